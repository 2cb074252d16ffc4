"""Chain discovery on the client side: the catalog YAML of proposed chains
(:mod:`chainotel.discovery.render`) and the scanner of Python services' source code
(:mod:`chainotel.discovery.code`). Discovery from traffic runs in the analyzer
(``POST /api/v1/discovery/scan``); ``chainotel discover`` renders its answer with the same renderer."""
