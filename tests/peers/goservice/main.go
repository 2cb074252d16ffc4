// Command goservice is a small HTTP service written with the OpenTelemetry Go SDK, for the
// end-to-end tests of a chain that crosses a service in another language than Python.
//
// It forwards every request it receives (except GET /health) to GOSERVICE_UPSTREAM and answers
// with the upstream's response, like an API proxy or sidecar would. The server side is wrapped by
// otelhttp.NewHandler (a SERVER span per request, the W3C trace context and baggage extracted from
// the incoming headers), the client side by otelhttp.NewTransport (a CLIENT span, trace context and
// the same baggage injected into the outgoing request). Nothing in it knows about chains: the
// chain decided upstream travels in the W3C baggage entry chain.id, and the chain instance ID is
// the trace ID, which W3C trace context keeps.
//
// Configuration, from the environment only:
//
//	GOSERVICE_LISTEN              address to listen on (default 127.0.0.1:8090)
//	GOSERVICE_UPSTREAM            base URL requests are forwarded to (required)
//	OTEL_SERVICE_NAME             service.name of its spans (default go-relay)
//	OTEL_EXPORTER_OTLP_ENDPOINT   OTLP/HTTP endpoint, read by the SDK's exporter
//	OTEL_BSP_SCHEDULE_DELAY       batch span processor delay in ms, read by the SDK
//
// SIGTERM or SIGINT stops it after flushing its spans.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	listen := getenv("GOSERVICE_LISTEN", "127.0.0.1:8090")
	upstream, err := url.Parse(os.Getenv("GOSERVICE_UPSTREAM"))
	if err != nil || upstream.Scheme == "" || upstream.Host == "" {
		log.Fatalf("GOSERVICE_UPSTREAM must be a base URL such as http://127.0.0.1:8007, got %q", os.Getenv("GOSERVICE_UPSTREAM"))
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		os.Setenv("OTEL_SERVICE_NAME", "go-relay")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	shutdown, err := setupTracing(ctx)
	if err != nil {
		log.Fatalf("tracing: %v", err)
	}

	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = otelhttp.NewTransport(http.DefaultTransport)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("/", otelhttp.NewHandler(proxy, "relay",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " relay" })))

	server := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(sctx)
	}()
	log.Printf("goservice listening on %s, forwarding to %s", listen, upstream)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("listen: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		log.Printf("flushing spans: %v", err)
	}
}

// setupTracing installs the SDK's tracer provider (OTLP/HTTP exporter, batch span processor,
// resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES) and the W3C tracecontext + baggage
// propagators. The Go SDK's global propagator is a no-op until one is set: without this line the
// trace would break at this service.
func setupTracing(ctx context.Context) (func(context.Context) error, error) {
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, err
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return provider.Shutdown, nil
}

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
