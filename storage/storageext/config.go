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
	// MaxDiskBytes caps the bytes the store takes on disk: past it, the oldest hours of
	// traces are dropped before their retention ends. 0 means no cap. Leave room above
	// it for one value-log file (256 MiB) and the memtables, which cannot be reclaimed.
	MaxDiskBytes int64 `mapstructure:"max_disk_bytes"`
	// MinFreeDiskBytes is the free space kept on the data directory's file system
	// beyond what the store's memory-mapped files may still claim; below it, writes are
	// refused with a retryable error until space returns (see WriteGuard).
	MinFreeDiskBytes int64 `mapstructure:"min_free_disk_bytes"`
	// ValueLogFileSize and MemTableSize size Badger's files (0: the store's defaults,
	// 256 MiB and 32 MiB); each mapped file is created at twice its size.
	ValueLogFileSize int64 `mapstructure:"value_log_file_size"`
	MemTableSize     int64 `mapstructure:"mem_table_size"`
	// Dependencies keeps the store's own service dependency counts (on by default).
	// Spoor's default config turns it off: its analytics stage counts the service graph
	// on every span and answers /api/dependencies, so the store's counts would be the
	// same work done twice (about 5% of ingest CPU, measured under the replay bench).
	Dependencies bool `mapstructure:"dependencies"`
}

// Validate checks the configuration without touching the disk.
func (c *Config) Validate() error {
	if c.Directory == "" {
		return errors.New("directory must be set")
	}
	if c.Retention < time.Minute {
		return fmt.Errorf("retention %v is too short: it must be at least one minute", c.Retention)
	}
	if c.MaxDiskBytes < 0 {
		return fmt.Errorf("max_disk_bytes %d is negative: use 0 for no cap", c.MaxDiskBytes)
	}
	if c.MinFreeDiskBytes < 0 || c.ValueLogFileSize < 0 || c.MemTableSize < 0 {
		return errors.New("min_free_disk_bytes, value_log_file_size and mem_table_size must not be negative")
	}
	return nil
}
