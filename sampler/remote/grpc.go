package remote

import (
	"context"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcService answers jaeger.api_v2.SamplingManager/GetSamplingStrategy from the same
// strategies as the HTTP handler, reloads included.
type grpcService struct {
	h *handler
}

var _ api_v2.SamplingManagerServer = grpcService{}

func (g grpcService) GetSamplingStrategy(ctx context.Context, req *api_v2.SamplingStrategyParameters) (*api_v2.SamplingStrategyResponse, error) {
	service := req.GetServiceName()
	if service == "" {
		g.h.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("service", ""), attribute.String("result", resultBadRequest)))
		return nil, status.Error(codes.InvalidArgument, "serviceName must not be empty")
	}
	cur := g.h.current.Load()
	resp, ok := cur.protoByService[service]
	if !ok {
		resp = cur.protoFallback
	}
	g.h.requests.Add(ctx, 1, metric.WithAttributes(
		attribute.String("service", g.h.serviceLabel(service)), attribute.String("result", resultOK)))
	// A copy: the message is marshalled after we return, and the served one is shared.
	return cloneResponse(resp), nil
}

// toProto is the strategy as the generated Jaeger message.
func (st strategy) toProto() *api_v2.SamplingStrategyResponse {
	r := &api_v2.SamplingStrategyResponse{StrategyType: api_v2.SamplingStrategyType(st.Type)}
	switch st.Type {
	case probabilistic:
		r.ProbabilisticSampling = &api_v2.ProbabilisticSamplingStrategy{SamplingRate: st.SamplingRate}
	case rateLimiting:
		r.RateLimitingSampling = &api_v2.RateLimitingSamplingStrategy{MaxTracesPerSecond: st.MaxTracesPerSecond}
	}
	if ops := st.Operations; ops != nil {
		r.OperationSampling = &api_v2.PerOperationSamplingStrategies{
			DefaultSamplingProbability:       ops.DefaultSamplingProbability,
			DefaultLowerBoundTracesPerSecond: ops.DefaultLowerBoundTracesPerSecond,
			PerOperationStrategies:           make([]*api_v2.OperationSamplingStrategy, 0, len(ops.PerOperation)),
		}
		for _, op := range ops.PerOperation {
			r.OperationSampling.PerOperationStrategies = append(r.OperationSampling.PerOperationStrategies,
				&api_v2.OperationSamplingStrategy{
					Operation:             op.Operation,
					ProbabilisticSampling: &api_v2.ProbabilisticSamplingStrategy{SamplingRate: op.SamplingRate},
				})
		}
	}
	return r
}

func cloneResponse(r *api_v2.SamplingStrategyResponse) *api_v2.SamplingStrategyResponse {
	out := *r
	if r.ProbabilisticSampling != nil {
		p := *r.ProbabilisticSampling
		out.ProbabilisticSampling = &p
	}
	if r.RateLimitingSampling != nil {
		rl := *r.RateLimitingSampling
		out.RateLimitingSampling = &rl
	}
	if r.OperationSampling != nil {
		ops := *r.OperationSampling
		ops.PerOperationStrategies = make([]*api_v2.OperationSamplingStrategy, len(r.OperationSampling.PerOperationStrategies))
		for i, op := range r.OperationSampling.PerOperationStrategies {
			o := *op
			if op.ProbabilisticSampling != nil {
				p := *op.ProbabilisticSampling
				o.ProbabilisticSampling = &p
			}
			ops.PerOperationStrategies[i] = &o
		}
		out.OperationSampling = &ops
	}
	return &out
}
