// Command spoor is Spoor: a tracing collector and backend in one binary, built as an
// OpenTelemetry Collector distribution. With no flags it runs the embedded default
// configuration (config.yaml), which reads the SPOOR_* environment variables.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := applyMemoryLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "spoor:", err)
		os.Exit(2)
	}
	if err := exportMetricsEndpoint(); err != nil {
		fmt.Fprintln(os.Stderr, "spoor:", err)
		os.Exit(2)
	}
	if err := newRootCommand(os.Args[1:]).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "spoor:", err)
		os.Exit(1)
	}
}
