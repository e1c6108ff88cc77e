"""One model folder format for every model kind: format version, meta, checksums, data match."""
