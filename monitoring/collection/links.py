"""Patient form links: token derivation and lookup.

token = base64url(HMAC-SHA256(key derived from SECRET_KEY, invitation salt)), 256 bits. The
database stores the salt and SHA-256 of the token, never the token: whoever copies the database
cannot open a form, while the clinic can show the same link again (QR code, reminder).
Rotating SECRET_KEY invalidates every outstanding link.
"""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

_KEY_SALT = "bordin.monitoring.collection.links.invitation"


def new_salt() -> str:
    return secrets.token_hex(32)


def token_for_salt(salt: str) -> str:
    digest = salted_hmac(_KEY_SALT, salt, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def form_url(token: str) -> str:
    return settings.SITE_URL + reverse("monitoring:form", args=[token])
