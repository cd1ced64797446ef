"""``Idempotency-Key`` on the API's create operations: a retry of a request whose answer was lost
(a timeout, a dropped connection) gets the first answer again instead of making a second patient,
session, form or export.

The key is the client's (a UUID per intended create is usual), scoped to the requesting user. The
first request with a key claims it (a row of ``IdempotencyKey`` holding a SHA-256 hash of the key
and an HMAC-SHA256 under ``SECRET_KEY`` of method, path and parsed body: keyed, because a body can
hold a secret, an export's study key, that a plain hash would let a database reader test guesses
against); its successful answer (2xx) is stored with it. Within
``KEEP`` (24 hours):

- the same key and the same request: the stored answer, same status and body, with the header
  ``Idempotent-Replayed: true``; nothing runs again;
- the same key with another body or path: 422 ``idempotency_key_reused``;
- the same key while the first request still runs: 409 ``idempotency_in_progress`` (retry later).

A failed create (4xx, 5xx) frees its key: nothing was made, so the retry runs. Keys older than
``KEEP`` are deleted by ``manage.py purge_idempotency_keys`` (and a reused old key starts afresh).
What an answer holds that must not be stored (a form link, a key to the patient's form) is
withheld and made again on replay.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.auth import user_of
from monitoring.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
MAX_LENGTH = 255

#: The header as the schema gives it, on each operation that takes it.
IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Optional. A key of your own (e.g. a UUID) for this create: a retry with the same key and "
    "body within 24 hours gets the first answer again instead of creating twice; the same key with "
    "another body is a 422 `idempotency_key_reused`.",
    pattern=r"^[!-~]{1,255}$",
)


class KeyReused(exceptions.APIException):
    status_code = 422
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for a different request (another body or path) in the last "
        "24 hours. Use a new key for a new request."
    )


class KeyInProgress(exceptions.APIException):
    status_code = 409
    default_code = "idempotency_in_progress"
    default_detail = "The first request with this Idempotency-Key is still running; retry in a moment."


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _request_hash(fingerprint: str) -> str:
    return salted_hmac("monitoring.api.idempotency", fingerprint, algorithm="sha256").hexdigest()


def _valid_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_LENGTH or not all("!" <= ch <= "~" for ch in key):
        raise exceptions.ValidationError(
            {HEADER: [f"Give a key of 1 to {MAX_LENGTH} visible ASCII characters (no spaces), e.g. a UUID."]}
        )
    return key


def idempotency_keys_purge(*, older_than: timedelta = KEEP) -> int:
    """Delete the keys older than ``older_than``; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


def _claim(*, user: User, key_hash: str, request_hash: str) -> tuple[IdempotencyKey | None, Response | None]:
    """Claim the key (the row) or answer from it: (row, None) to run the request, (None, answer)
    to replay. Raises ``KeyReused`` or ``KeyInProgress``."""
    IdempotencyKey.objects.filter(user=user, key_hash=key_hash, created_at__lt=timezone.now() - KEEP).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user=user, key_hash=key_hash, request_hash=request_hash
            ), None
    except IntegrityError:
        row = IdempotencyKey.objects.filter(user=user, key_hash=key_hash).first()
    if row is None or row.status is None:
        raise KeyInProgress()  # running (or freed just now, after a failure): retry
    if row.request_hash != request_hash:
        raise KeyReused()
    headers = {"Idempotent-Replayed": "true", **({"Location": row.location} if row.location else {})}
    return None, Response(row.response, status=row.status, headers=headers)


F = TypeVar("F", bound=Callable[..., Response])


def idempotent(
    *, withhold: str = "", restore: Callable[[dict[str, Any]], Any] | None = None
) -> Callable[[F], F]:
    """Make a create operation (a view method) honour ``Idempotency-Key``. ``withhold`` names a
    field of the answer that is not stored; ``restore(body)`` makes it again on replay."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def run(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return handler(view, request, *args, **kwargs)
            user = user_of(request)
            fingerprint = json.dumps(
                [request.method, request.path, request.data], sort_keys=True, cls=DjangoJSONEncoder
            )
            row, replay = _claim(
                user=user, key_hash=_sha256(_valid_key(key)), request_hash=_request_hash(fingerprint)
            )
            if replay is not None:
                if withhold and restore is not None and isinstance(replay.data, dict):
                    replay.data = {**replay.data, withhold: restore(replay.data)}
                return replay
            assert row is not None
            try:
                response = handler(view, request, *args, **kwargs)
            except BaseException:
                row.delete()
                raise
            if not 200 <= response.status_code < 300:
                row.delete()
                return response
            body = response.data
            if withhold and isinstance(body, dict):
                body = {k: v for k, v in body.items() if k != withhold}
            row.status = response.status_code
            row.response = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
            row.location = str(response.headers.get("Location", ""))[:200]
            row.save(update_fields=["status", "response", "location"])
            return response

        return run  # type: ignore[return-value]

    return decorate
