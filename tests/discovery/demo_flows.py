"""The demo's flows as its code makes them (``examples/*.py``): what discovery from traffic and from
code must both recover."""

DEMO_FLOWS = {  # chain the built-in catalog gives the flow → (services, calls)
    "A1": ({"data-bridge", "database-service", "trading-engine"},
           {"data-bridge -> database-service", "data-bridge -> trading-engine"}),
    "A2": ({"api-gateway", "ai-provider", "data-bridge", "database-service"},
           {"api-gateway -> ai-provider", "ai-provider -> data-bridge", "ai-provider -> database-service"}),
    "B3": ({"api-gateway", "trading-engine", "data-bridge", "database-service"},
           {"api-gateway -> trading-engine", "trading-engine -> data-bridge", "trading-engine -> database-service"}),
    "C1": ({"api-gateway", "data-bridge"}, {"api-gateway -> data-bridge"}),
    "D1": ({"ai-provider", "database-service"}, {"ai-provider -> database-service"}),
    "E1": ({"api-gateway", "ai-provider", "data-bridge", "database-service", "trading-engine"},
           {"api-gateway -> ai-provider", "api-gateway -> data-bridge", "api-gateway -> database-service",
            "api-gateway -> trading-engine"}),
}  # fmt: skip
