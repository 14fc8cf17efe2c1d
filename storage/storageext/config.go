package storageext

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the trace store.
type Config struct {
	// Directory is where Badger keeps its files. Only one process may open it.
	Directory string `mapstructure:"directory"`
	// Retention is how long traces are kept.
	Retention time.Duration `mapstructure:"retention"`
	// SyncWrites makes every acknowledged write survive a power loss (fsync per group
	// commit), not only a crash of the process. On by default.
	SyncWrites bool `mapstructure:"sync_writes"`
}

// Validate checks the configuration without touching the disk.
func (c *Config) Validate() error {
	if c.Directory == "" {
		return errors.New("directory must be set")
	}
	if c.Retention < time.Minute {
		return fmt.Errorf("retention %v is too short: it must be at least one minute", c.Retention)
	}
	return nil
}
