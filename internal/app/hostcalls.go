package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"gatehouse.dev/gatehouse/connections"
	"gatehouse.dev/gatehouse/internal/jsopen"
	"gatehouse.dev/gatehouse/internal/outbound"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/tracing"
	"gatehouse.dev/gatehouse/runtimes"
)

// The functions' key-value store: one JetStream Key-Value bucket per stack.
const (
	// kvMaxValue bounds a value.
	kvMaxValue = 1 << 20
	// kvMaxList bounds the keys one list returns.
	kvMaxList = 10000
)

func kvBucket(stack string) string { return "gh_" + stack + "_kv" }

// ensureKV creates the stack's key-value bucket for functions, or binds to it. Keys may expire one by
// one (CreateKey with a ttl), which needs the bucket's limit markers.
func ensureKV(ctx context.Context, js jetstream.JetStream, stack string) error {
	_, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:         kvBucket(stack),
		Description:    "Gatehouse key-value store of the functions of stack " + stack,
		History:        1,
		MaxValueSize:   kvMaxValue,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: time.Second,
	})
	if err != nil {
		return fmt.Errorf("key-value store: %w", err)
	}
	return nil
}

// workerHost performs the host calls of a worker's functions: connections through the router (which
// reaches each connection's node over the bus), keys in the stack's bucket.
type workerHost struct {
	router *connections.Router
	kv     jetstream.KeyValue
	// js and stack publish the functions' messages on the stack's event bus.
	js       jetstream.JetStream
	stack    string
	outbound *outbound.Client
	// tracer, when set, records a span for each outbound request and post, under the invocation's.
	tracer trace.Tracer
}

// span starts a host call's span under the invocation's span in ctx; a no-op span without a
// tracer or an invocation span.
func (h *workerHost) span(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if h.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noop.Span{}
	}
	return h.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endSpan ends a host call's span, marking a failure.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// envTestHosts, in a test's worker, answers name lookups of outbound requests: "name=ip,name=ip".
// Tests point names at loopback servers with it; nothing else reads it.
const envTestHosts = "GATEHOUSE_TEST_HOSTS"

// testResolver answers the names envTestHosts lists, and asks the system for the others.
type testResolver map[string]net.IP

func (r testResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip, ok := r[host]; ok {
		return []net.IPAddr{{IP: ip}}, nil
	}
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

// outboundResolver is the resolver of outbound requests: the system's, or the test's when
// envTestHosts is set.
func outboundResolver(env string) outbound.Resolver {
	if env == "" {
		return nil
	}
	r := testResolver{}
	for _, pair := range strings.Split(env, ",") {
		name, ip, _ := strings.Cut(pair, "=")
		if addr := net.ParseIP(ip); addr != nil {
			r[name] = addr
		}
	}
	return r
}

var _ runtimes.Host = (*workerHost)(nil)

func connectionError(err error) error {
	switch {
	case errors.Is(err, connections.ErrGone):
		return fmt.Errorf("%w: %w", runtimes.ErrHostNotFound, err)
	case errors.Is(err, connections.ErrPayloadTooLarge):
		return fmt.Errorf("%w: %w", runtimes.ErrHostTooLarge, err)
	case errors.Is(err, connections.ErrLimitExceeded):
		return fmt.Errorf("%w: %w", runtimes.ErrHostLimit, err)
	}
	return err
}

func (h *workerHost) PostToConnection(ctx context.Context, id string, data []byte) (err error) {
	ctx, span := h.span(ctx, "post to connection", trace.SpanKindClient, attribute.String("connection.id", id))
	defer func() { endSpan(span, err) }()
	return connectionError(h.router.Post(ctx, id, data))
}

func (h *workerHost) GetConnection(ctx context.Context, id string) ([]byte, error) {
	r, err := h.router.Get(ctx, id)
	if err != nil {
		return nil, connectionError(err)
	}
	return json.Marshal(map[string]any{
		"connectedAt":  r.ConnectedAt.UTC().Format(time.RFC3339Nano),
		"lastActiveAt": r.LastActiveAt.UTC().Format(time.RFC3339Nano),
		"identity":     map[string]string{"sourceIp": r.SourceIP, "userAgent": r.UserAgent},
	})
}

func (h *workerHost) DeleteConnection(ctx context.Context, id string) error {
	return connectionError(h.router.Delete(ctx, id))
}

func (h *workerHost) Broadcast(ctx context.Context, ids []string, data []byte) (gone []string, err error) {
	ctx, span := h.span(ctx, "broadcast", trace.SpanKindClient, attribute.Int("connections", len(ids)))
	defer func() { endSpan(span, err) }()
	return h.router.Broadcast(ctx, ids, data)
}

// Publish stores a function's message on a subject of the stack's event bus, when the function's
// allowedPublishSubjects allow it.
func (h *workerHost) Publish(ctx context.Context, req runtimes.PublishRequest) (err error) {
	if err := spec.CheckSubject(req.Subject, false); err != nil {
		return fmt.Errorf("%w: %w", runtimes.ErrHostInvalid, err)
	}
	if !slices.ContainsFunc(req.Allow, func(p string) bool { return spec.SubjectMatches(p, req.Subject) }) {
		return fmt.Errorf("%w: publishing on %s is not allowed for function %s; add it to allowedPublishSubjects", runtimes.ErrHostNotAllowed, req.Subject, req.Function)
	}
	if len(req.Data) > spec.MaxAsyncPayload {
		return fmt.Errorf("%w: a message is at most %d bytes", runtimes.ErrHostTooLarge, spec.MaxAsyncPayload)
	}
	if h.js == nil {
		return errors.New("the event bus is not available to this worker")
	}
	ctx, span := h.span(ctx, "publish", trace.SpanKindProducer, attribute.String("messaging.destination.name", req.Subject))
	defer func() { endSpan(span, err) }()
	_, err = h.js.Publish(ctx, "gh."+h.stack+".ev."+req.Subject, req.Data)
	return err
}

func kvError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("%w: %w", runtimes.ErrHostNotFound, err)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("%w: %w", runtimes.ErrHostInvalid, err)
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("%w: %w", runtimes.ErrHostExists, err)
	}
	return err
}

func (h *workerHost) KVGet(ctx context.Context, key string) ([]byte, error) {
	e, err := h.kv.Get(ctx, key)
	if err != nil {
		return nil, kvError(err)
	}
	return e.Value(), nil
}

func (h *workerHost) KVPut(ctx context.Context, key string, value []byte) error {
	if len(value) > kvMaxValue {
		return runtimes.ErrHostTooLarge
	}
	_, err := h.kv.Put(ctx, key, value)
	return kvError(err)
}

func (h *workerHost) KVCreate(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if len(value) > kvMaxValue {
		return runtimes.ErrHostTooLarge
	}
	var opts []jetstream.KVCreateOpt
	if ttl > 0 {
		opts = append(opts, jetstream.KeyTTL(max(ttl, time.Second)))
	}
	_, err := h.kv.Create(ctx, key, value, opts...)
	return kvError(err)
}

func (h *workerHost) KVDelete(ctx context.Context, key string) error {
	err := h.kv.Delete(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return kvError(err)
}

// KVList lists the keys that start with prefix. JetStream filters by whole dot-separated tokens, so
// the filter covers the prefix's complete tokens and the rest is matched here.
func (h *workerHost) KVList(ctx context.Context, prefix string) ([]string, error) {
	filter := ">"
	if i := strings.LastIndexByte(prefix, '.'); i > 0 {
		filter = prefix[:i] + ".>"
	}
	lister, err := h.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, kvError(err)
	}
	defer lister.Stop()
	keys := []string{}
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) && len(keys) < kvMaxList {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// HTTP makes a function's outbound request through the worker's outbound client, which checks it
// against the function's allow-list.
func (h *workerHost) HTTP(ctx context.Context, req runtimes.HTTPRequest) (runtimes.HTTPResponse, error) {
	if h.outbound == nil {
		return runtimes.HTTPResponse{}, fmt.Errorf("%w: outbound requests are not available in this worker", runtimes.ErrHostNotAllowed)
	}
	ctx, span := h.span(ctx, "HTTP "+req.Method, trace.SpanKindClient, attribute.String("http.request.method", req.Method), attribute.String("url.full", req.URL))
	header := req.Header
	if span.SpanContext().IsValid() {
		// The request carries the trace on: the called service continues it.
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("traceparent", tracing.TraceParent(ctx))
	}
	resp, err := h.outbound.Do(ctx, req.Function, req.Allow, outbound.Request{Method: req.Method, URL: req.URL, Header: header, Body: req.Body})
	if err == nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
	}
	endSpan(span, err)
	switch {
	case err == nil:
		return runtimes.HTTPResponse{Status: resp.Status, Header: resp.Header, Body: resp.Body}, nil
	case errors.Is(err, outbound.ErrNotAllowed):
		return runtimes.HTTPResponse{}, fmt.Errorf("%w: %w", runtimes.ErrHostNotAllowed, err)
	case errors.Is(err, outbound.ErrTooLarge):
		return runtimes.HTTPResponse{}, fmt.Errorf("%w: %w", runtimes.ErrHostTooLarge, err)
	case errors.Is(err, outbound.ErrBadRequest):
		return runtimes.HTTPResponse{}, fmt.Errorf("%w: %w", runtimes.ErrHostInvalid, err)
	}
	return runtimes.HTTPResponse{}, err
}

// Dial opens a connection for a process runtime's proxy, checked against the function's allow-list as
// HTTP's requests are; a refusal wraps runtimes.ErrHostNotAllowed.
func (h *workerHost) Dial(ctx context.Context, function string, allow []spec.OutboundHost, scheme, host string, port int) (net.Conn, error) {
	if h.outbound == nil {
		return nil, fmt.Errorf("%w: outbound connections are not available in this worker", runtimes.ErrHostNotAllowed)
	}
	conn, err := h.outbound.Dial(ctx, function, allow, scheme, host, port)
	if errors.Is(err, outbound.ErrNotAllowed) || errors.Is(err, outbound.ErrBadRequest) {
		return nil, fmt.Errorf("%w: %w", runtimes.ErrHostNotAllowed, err)
	}
	return conn, err
}
