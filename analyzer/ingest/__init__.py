"""OTLP intake: decoding to rows (:mod:`.otlp`, :mod:`.otlp_json`), the OTLP/HTTP receiver
(:mod:`.http`), the OTLP/gRPC server (:mod:`.grpc`), and file importers (:mod:`.importer`,
:mod:`.jaeger`)."""
