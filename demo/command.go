package demo

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// NewCommand returns the `demo` sub-command: it reads the endpoints from the
// SPOOR_* environment (ConfigFromEnv), takes --rate, --duration and --seed,
// runs, prints the Stats, and returns Run's error so that main can exit
// non-zero. The zap logger is a production console logger on stderr.
func NewCommand() *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Send realistic payment traces to a running Spoor",
		Long: `Sends checkout traces across api-gateway, order-service, inventory-service,
payment-service, fraud-service, ledger-service and notification-service, over
OTLP gRPC and HTTP (OTel Go SDK) and Zipkin (zipkin-go), with card declines,
timeouts and retries, an open circuit breaker and a saga compensation.
Endpoints come from SPOOR_OTLP_GRPC_ENDPOINT, SPOOR_OTLP_HTTP_ENDPOINT and
SPOOR_ZIPKIN_ENDPOINT (host:port).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			zcfg := zap.NewDevelopmentConfig()
			zcfg.Development = false
			zcfg.DisableStacktrace = true
			logger, err := zcfg.Build()
			if err != nil {
				return fmt.Errorf("build logger: %w", err)
			}
			defer func() { _ = logger.Sync() }()
			cmd.SilenceUsage = true // a failed run is not a usage mistake
			// The environment is read when the command runs, not when it is built.
			env := ConfigFromEnv()
			cfg.OTLPGRPCEndpoint, cfg.OTLPHTTPEndpoint, cfg.ZipkinEndpoint = env.OTLPGRPCEndpoint, env.OTLPHTTPEndpoint, env.ZipkinEndpoint
			stats, err := Run(cmd.Context(), cfg, logger)
			_, _ = fmt.Fprintf(cmd.OutOrStdout(),
				"traces %d, spans %d (otlp/grpc %d, otlp/http %d, zipkin %d), failed exports %d (%d spans)\n"+
					"card declines %d, timeout retries %d, fraud-service failures %d, circuit open %d, saga compensations %d\n",
				stats.Traces, stats.Spans(), stats.OTLPGRPCSpans, stats.OTLPHTTPSpans, stats.ZipkinSpans,
				stats.Errors, stats.FailedSpans, stats.CardDeclines, stats.TimeoutRetries, stats.FraudFailures,
				stats.CircuitOpenRejections, stats.SagaCompensations)
			return err
		},
	}
	f := cmd.Flags()
	f.Float64Var(&cfg.Rate, "rate", cfg.Rate, "checkout traces per second")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to send for; 0 means until interrupted")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed for which traces fail and how, and for latencies")
	return cmd
}
