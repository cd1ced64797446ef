"""The one hash of a secret token (form links, staff invitations, API tokens).

Only the SHA-256 of a token is stored, never the token: a copy of the database opens nothing.
The tokens themselves carry 256 bits of randomness, so an unsalted fast hash is enough to make
them unrecoverable and lets a presented token be found by an index lookup.
"""

from __future__ import annotations

import hashlib


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
