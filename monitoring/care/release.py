"""What tells one rendering from another, for the caches of rendered pages: the deployment's code
and the reader's language."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from django.conf import settings

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


def cache_language(language: str | None) -> str:
    """The language part of a cache key: one of ``settings.LANGUAGES``, the default for anything
    else (its rendering is told apart by the digest)."""
    codes = [code for code, _ in settings.LANGUAGES]
    return language if language in codes else settings.LANGUAGE_CODE


def cache_languages() -> list[str]:
    """Every language part a cache key can have (what an erasure deletes)."""
    return sorted({code for code, _ in settings.LANGUAGES} | {settings.LANGUAGE_CODE})
