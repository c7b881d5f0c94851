// Package tracing sets up OpenTelemetry tracing for a Gatehouse process (the node, or a worker):
// spans exported with OTLP, over HTTP or gRPC, to a configured collector, sampled by a ratio of
// the traces that start here and following the caller's decision for those that arrive with a W3C
// traceparent. Without an endpoint it gives a tracer that records nothing, at no cost.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config says where spans go.
type Config struct {
	// Endpoint is the collector's OTLP endpoint: http://HOST:PORT (OTLP over HTTP, spans posted to
	// /v1/traces) or grpc://HOST:PORT (OTLP over gRPC; grpcs:// and https:// use TLS). "" traces
	// nothing.
	Endpoint string
	// Ratio is the share of the traces that start here which are sampled, 0..1; a trace that arrives
	// with a traceparent follows its sampled flag.
	Ratio float64
	// Service is service.name of the spans ("gatehouse", "gatehouse-worker").
	Service string
}

// Provider makes the process's tracers.
type Provider struct {
	sdk *sdktrace.TracerProvider // nil when tracing is off
}

// New returns a Provider for cfg; Shutdown flushes it.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return &Provider{}, nil
	}
	if cfg.Ratio < 0 || cfg.Ratio > 1 {
		return nil, fmt.Errorf("tracing: sampling ratio %v: want 0 to 1", cfg.Ratio)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tracing: endpoint %q: want http://HOST:PORT or grpc://HOST:PORT", cfg.Endpoint)
	}
	var exp *otlptrace.Exporter
	switch u.Scheme {
	case "http", "https":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			opts = append(opts, otlptracehttp.WithURLPath(p))
		}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc", "grpcs":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host)}
		if u.Scheme == "grpc" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("tracing: endpoint %q: want an http://, https://, grpc:// or grpcs:// URL", cfg.Endpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.Service))
	sdk := sdktrace.NewTracerProvider(
		// Spans leave within a second: a local collector shows a request while it is fresh.
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio))),
	)
	return &Provider{sdk: sdk}, nil
}

// Tracer returns a tracer named name; a no-op one when tracing is off.
func (p *Provider) Tracer(name string) trace.Tracer {
	if p == nil || p.sdk == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return p.sdk.Tracer(name)
}

// On reports whether spans are exported.
func (p *Provider) On() bool { return p != nil && p.sdk != nil }

// Shutdown exports what is buffered and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// Propagator reads and writes W3C traceparent and tracestate.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// FromTraceParent returns ctx with the remote span a W3C traceparent names (ctx unchanged when it
// names none).
func FromTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return Propagator().Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceParent is the W3C traceparent of the span in ctx; "" when there is none.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	Propagator().Inject(ctx, c)
	return c["traceparent"]
}

// AmznTraceID is a traceparent in the format of Lambda's _X_AMZN_TRACE_ID:
// Root=1-TTTTTTTT-TTTTTTTTTTTTTTTTTTTTTTTT;Parent=SSSSSSSSSSSSSSSS;Sampled=1; "" for none.
func AmznTraceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return ""
	}
	sampled := "0"
	if parts[3] == "01" {
		sampled = "1"
	}
	return "Root=1-" + parts[1][:8] + "-" + parts[1][8:] + ";Parent=" + parts[2] + ";Sampled=" + sampled
}
