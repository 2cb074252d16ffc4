"""The analyzer's neutral model, imported by every other layer and importing none of them:
:mod:`.span` (the :class:`~chainotel_analyzer.model.span.Span` the analysis works on) and
:mod:`.rows` (the store's row formats: Arrow schema, columns, SELECT lists, row ↔ span)."""
