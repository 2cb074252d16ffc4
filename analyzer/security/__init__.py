"""Who may call the analyzer: bearer tokens with scopes (:mod:`.tokens`), which scope each request
needs (:mod:`.policy`), and enforcement for HTTP (:mod:`.http`, an ASGI middleware) and gRPC
(:mod:`.grpc`, a server interceptor). Reference: docs/security.md."""
