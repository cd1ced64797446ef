"""What tells one deployment's rendering from another's, for the caches of rendered pages."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The code and templates that render pages: a change to any of them renders every page afresh.
SOURCES = ("monitoring", "clinics", "templates")


@cache
def source_digest() -> str:
    """A digest of every Python module and template of the project, read once per process (a few
    hundred small files): cached pages rendered by other code are never served."""
    digest = hashlib.sha256()
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".html", ".txt", ".json") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
