"""ProvKB capture: record Keras training as W3C PROV.

`callback.ProvenanceCallback` (a Keras callback) and `autolog.autolog()` (patches
`fit`/`evaluate`) are the entry points. `recorder` builds the graph from plain facts
(`facts`), independent of Keras; the other modules extract those facts.
"""
