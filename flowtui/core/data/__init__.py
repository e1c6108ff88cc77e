"""Data sets: schema, reading and validation, cache, safe writes, import, synthesis, summaries."""
