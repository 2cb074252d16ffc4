// Export spans with each of the Node.js SDK's three OTLP trace exporters (http/json, http/protobuf, grpc)
// to an analyzer, and print per exporter the OTLP/JSON of what it sent (the SDK's own JSON serializer),
// for tests/ingest/test_trace_roundtrip_node.py. Usage: node export.js <http base URL> <grpc host:port>
"use strict";
const api = require("@opentelemetry/api");
const { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace");
const { resourceFromAttributes } = require("@opentelemetry/resources");
const { JsonTraceSerializer } = require("@opentelemetry/otlp-transformer");
const http = require("@opentelemetry/exporter-trace-otlp-http");
const proto = require("@opentelemetry/exporter-trace-otlp-proto");
const grpc = require("@opentelemetry/exporter-trace-otlp-grpc");

const [httpBase, grpcTarget] = process.argv.slice(2);
const exporters = {
  "http/json": () => new http.OTLPTraceExporter({ url: `${httpBase}/v1/traces` }),
  "http/protobuf": () => new proto.OTLPTraceExporter({ url: `${httpBase}/v1/traces` }),
  grpc: () => new grpc.OTLPTraceExporter({ url: `http://${grpcTarget}` }),
};

async function makeSpans(kind) {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": `node-${kind}`, "host.cores": 8, "deployment.canary": true }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  const tracer = provider.getTracer("roundtrip.node", "4.5.6");
  const linked = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1,
    traceState: api.createTraceState("vendor=n1") };
  const root = tracer.startSpan("GET /node", {
    kind: api.SpanKind.SERVER,
    attributes: { "http.route": "/node", retries: 3, ratio: 0.25, ok: true, tags: ["a", "b"], weights: [1.5, 2.5] },
    links: [{ context: linked, attributes: { "link.kind": "follows" } }],
  });
  root.addEvent("cache.miss", { key: "k1", size: 42 });
  const ctx = api.trace.setSpan(api.context.active(), root);
  const child = tracer.startSpan("call backend", { kind: api.SpanKind.CLIENT }, ctx);
  child.setStatus({ code: api.SpanStatusCode.ERROR, message: "backend failed" });
  child.recordException(new Error("boom"));
  child.end();
  root.end();
  await provider.forceFlush();
  return memory.getFinishedSpans();
}

async function main() {
  const sent = {};
  for (const [kind, make] of Object.entries(exporters)) {
    const spans = await makeSpans(kind);
    const exporter = make();
    const result = await new Promise((resolve) => exporter.export(spans, resolve));
    await exporter.shutdown();
    if (result.code !== 0) throw new Error(`${kind}: export failed: ${result.error}`);
    sent[kind] = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(spans)).toString("utf8"));
  }
  process.stdout.write(JSON.stringify(sent));
}

main().catch((err) => { console.error(err); process.exit(1); });
