"""One model folder format for every model kind: format version, meta, checksums, data match.

A saved model is a folder `DIR/NAME` holding the model's own files (no pickle), `data_sketch.json` (the ids
of its training data, `data_match`) and a `meta.json` (the format version, the model's name and parameters,
the fields of its kind, and the SHA-256 of every other file). What differs between Flow models
(`flow/store.py`) and recommenders (`recs/store.py`) is a `FolderKind`; the rest is here:
- `kind`: `FolderKind`, `ModelFolderError` (the base of each kind's error), the JSON reader;
- `versions`: each kind's format migrations (one function per version step), `library_versions`;
- `members`: the files a folder may hold and their checksums; `meta`: reading and writing meta.json;
- `target`: which folders a save may replace; `save` and `swap`: the atomic save, swap and recovery;
- `data_match`: `fingerprint`, the training data's description and whether a model meets its data.

This package is shared core: it imports errors, safe_files, numpy and pandas, never a capability.
"""

from __future__ import annotations

from flowtui.core.modelfiles.data_match import fingerprint
from flowtui.core.modelfiles.kind import META_FILE, FolderKind, ModelFolderError
from flowtui.core.modelfiles.versions import library_versions

__all__ = ["META_FILE", "FolderKind", "ModelFolderError", "fingerprint", "library_versions"]
