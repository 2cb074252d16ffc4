"""The analyzer's HTTP side: the app factory (:mod:`.app`), shared dependencies (:mod:`.deps`),
health (:mod:`.health`), and the analysis routers."""
