"""The REST API's plumbing: who is asking (token or session), what they may see (the pages' rules,
narrowed to a token's clinic), how fast, and what an error looks like.

Scoping. A request is authenticated by a session (the browser: it sees what the pages show) or
by an API token, which belongs to one user *and one clinic*. The access rules are not written
again here: every read starts from the selectors (``patients_visible_to``, ``patient_get_for_user``,
``flag_get_for_user``, ...) exactly as the pages do, and a token request is then narrowed to the
token's clinic: :func:`patients_for` filters the selector's queryset, :func:`in_scope` turns an
object of another clinic into the same 404 as an invisible one. So an admin of two clinics with a
token of clinic A sees only A, and a therapist's token only their own patients in that clinic.

Errors are one JSON shape (:func:`api_exception_handler`), documented on every operation by the
schema hook :func:`schema_error_responses`::

    {"error": {"code": "invalid", "message": "...", "fields": {"label": ["..."]}, "problems": []}}
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from clinics.errors import ApplicationError
from clinics.models import Clinic, Membership, Patient
from clinics.permissions import require_clinic_admin
from monitoring.models import ApiToken
from monitoring.security.decorators import sign_in_is_recent
from monitoring.security.tokens import api_token_use

# --- Authentication ------------------------------------------------------------------------------


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer bdn_<prefix>_<secret>`` (``Token`` works too).

    A request without that header is left to the next authenticator (the session); a request
    *with* one must carry a usable token, or it is refused with 401 and the reason.
    """

    keywords = (b"bearer", b"token")

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Give the token after 'Bearer ', with nothing else in the header.", code="token_malformed"
            )
        try:
            presented = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "The token contains characters a Bordin token never has.", code="token_malformed"
            ) from None
        try:
            token = api_token_use(token=presented)
        except ApplicationError as error:
            raise exceptions.AuthenticationFailed(error.message, code=f"token_{error.code}") from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'


class ReauthenticationRequired(exceptions.APIException):
    """A browser session whose last password confirmation is too old for this operation."""

    status_code = 401
    default_code = "reauthentication_required"
    default_detail = (
        "This needs a recent sign-in: confirm your password (or an authenticator code) again at "
        "/accounts/reauthenticate/, then repeat the request. API tokens are not affected."
    )
    auth_header = 'Bearer realm="api"'


def require_recent_sign_in(request: Request) -> None:
    """The pages' re-authentication rule (``recent_sign_in_required``) for the API: a browser
    session must have confirmed the password (or signed in) within
    ACCOUNT_REAUTHENTICATION_TIMEOUT, or gets a JSON 401 ``reauthentication_required``. A token
    request is not checked: the token is its own credential (created only after a recent sign-in,
    expiring, revocable). Called first by every operation whose page asks for a recent sign-in:
    starting and downloading an export, creating and revoking a token."""
    if token_of(request) is None and not sign_in_is_recent(request._request):
        raise ReauthenticationRequired()


class SessionOnly(BasePermission):
    """Signed in through the browser, not with a token: minting tokens with a token would let a
    leaked one outlive its own revocation."""

    message = "Sign in to Bordin to create API tokens; a token cannot create another token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method != "POST" or not isinstance(request.auth, ApiToken)


# --- Scoping -------------------------------------------------------------------------------------


def user_of(request: Request) -> User:
    """The signed-in user of a request that passed IsAuthenticated (every API view but the 404)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def token_of(request: Request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def clinic_scope(request: Request) -> int | None:
    """The id of the only clinic this request may reach, or None for a browser session."""
    token = token_of(request)
    return token.clinic_id if token else None


def in_scope(request: Request, *, clinic_id: int) -> None:
    """404 for an object outside the token's clinic: the same answer as for one the user may
    never see, so a token cannot tell another clinic's data from missing data."""
    scope = clinic_scope(request)
    if scope is not None and scope != clinic_id:
        raise Http404


def scoped(request: Request, queryset: QuerySet[Any], *, clinic_field: str) -> QuerySet[Any]:
    """``queryset`` (already narrowed by a selector) narrowed to the token's clinic."""
    scope = clinic_scope(request)
    return queryset if scope is None else queryset.filter(**{clinic_field: scope})


def patients_for(request: Request) -> QuerySet[Patient]:
    """The patients this request may see: the pages' rule, within the token's clinic."""
    return scoped(request, Patient.objects.visible_to(user_of(request)), clinic_field="clinic_id")


def memberships_for(request: Request) -> QuerySet[Membership]:
    """The requester's active memberships (one, the token's clinic, for a token)."""
    memberships = Membership.objects.reaching(user_of(request)).select_related("clinic")
    return scoped(request, memberships, clinic_field="clinic_id")


def require_admin(request: Request, *, clinic: Clinic, action: str) -> None:
    """403 unless the requester is an active admin of ``clinic`` (the clinic admin pages' rule)."""
    require_clinic_admin(user=user_of(request), clinic=clinic, action=action)


# --- Throttling ----------------------------------------------------------------------------------


class ApiRateThrottle(SimpleRateThrottle):
    """One budget per token (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api"]``), per signed-in
    user for browser sessions, per address otherwise. The counts live in the cache: Redis in
    production (REDIS_URL), so every server shares them."""

    scope = "api"

    def get_cache_key(self, request: Request, view: Any) -> str:
        token = token_of(request)
        if token is not None:
            ident = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


# --- Pagination ----------------------------------------------------------------------------------

MAX_OFFSET = 1_000_000_000


class ApiPagination(LimitOffsetPagination):
    """limit/offset on every list. Unlike DRF's, a malformed or out-of-range value is a 400
    naming the parameter rather than silently replaced by the default."""

    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        return _bounded(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded(request, self.offset_query_param, 0, 0, MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.default_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": "Rows to skip.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
            },
        ]


def _bounded(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise exceptions.ValidationError({name: [f"Give a whole number from {low} to {high}."]})
    return int(raw)


# --- Content negotiation -------------------------------------------------------------------------


class FirstRendererNegotiation(BaseContentNegotiation):
    """For file downloads: the file has its own type, so ``Accept: text/csv`` must not turn the
    request into a 406; errors are rendered with the view's first renderer (JSON)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"


class FhirJsonDstu2Renderer(JSONRenderer):
    """The older FHIR media type, which many clients still send in ``Accept``."""

    media_type = "application/json+fhir"


# --- Request bodies ------------------------------------------------------------------------------

#: The largest body the API reads. The largest real one, a form's answers (at most 200 items), is
#: a few KB. Django's own limit for pages (DATA_UPLOAD_MAX_MEMORY_SIZE) is larger.
MAX_BODY_BYTES = 64 * 1024
#: The deepest nesting of arrays and objects. Real bodies nest three deep (``{"answers":
#: [{"item": 1}]}``); a body of 100,000 ``[`` would exhaust the parser's recursion (a 500).
MAX_JSON_DEPTH = 20


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = f"The request body is too large: the API takes at most {MAX_BODY_BYTES // 1024} KB."


class JsonTooDeep(exceptions.ParseError):
    default_code = "too_deep"
    default_detail = f"The JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects."


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, bounded before it parses: at most ``MAX_BODY_BYTES`` (413
    ``too_large``, by the declared length or what is read) and arrays and objects nested at most
    ``MAX_JSON_DEPTH`` deep (400 ``too_deep``). A larger body never gets here: Django refuses
    one over DATA_UPLOAD_MAX_MEMORY_SIZE while DRF reads it (also 413, api_exception_handler)."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        declared = str(request.META.get("CONTENT_LENGTH") or "") if request is not None else ""
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestTooLarge()
        body = stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise RequestTooLarge()
        try:
            text = body.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        except (LookupError, UnicodeError):
            text = ""  # not text: DRF's parser says so below
        if json_nesting(text, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise JsonTooDeep()
        return super().parse(io.BytesIO(body), media_type, parser_context)


def json_nesting(text: str, *, limit: int) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count);
    stops counting past ``limit``. Malformed JSON is the parser's to refuse."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif char in "]}":
            depth -= 1
    return deepest


# --- Errors --------------------------------------------------------------------------------------

#: ``ApplicationError.code`` values that mean "the state of the thing forbids it now", not bad input.
CONFLICT_CODES = frozenset({"used", "acknowledged", "not_ready", "external_id_taken"})
NOT_FOUND_MESSAGE = "Not found: it does not exist, or you may not see it."


def error_body(
    *,
    code: str,
    message: str,
    fields: Mapping[str, list[str]] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "fields": dict(fields or {}), "problems": problems or []}
    }


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as ``{"error": {code, message, fields, problems}}``.

    Domain failures (``ApplicationError``) are 400, or 409 when the object's state forbids the
    action (a response already received); 404 never says whether the object exists elsewhere.
    A body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads it through Django before the
    parser's own, smaller limit) is 413 ``too_large``, like one over that limit; any other
    exception is logged with its traceback and answered 503 ``unavailable`` when the database
    cannot be reached, else 500 ``server_error``, without internals (:func:`unhandled_error`).
    """
    # Imported here: DRF imports this module (an authentication class lives here) while
    # rest_framework.views is still loading.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, ApplicationError):
        set_rollback()
        status = 409 if exc.code in CONFLICT_CODES else 400
        return Response(
            error_body(code=exc.code or "invalid", message=exc.message, problems=exc.problems), status=status
        )
    if isinstance(exc, Http404 | exceptions.NotFound):
        set_rollback()
        return Response(error_body(code="not_found", message=NOT_FOUND_MESSAGE), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, SuspiciousOperation):
        exc = RequestTooLarge() if isinstance(exc, RequestDataTooBig) else BadRequest()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        set_rollback()
        request = context.get("request")
        return unhandled_error(exc, request=getattr(request, "_request", None))
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(fields)) or "the request"
        response.data = error_body(
            code="invalid", message=f"Some values are not valid: {names}.", fields=fields
        )
    else:
        codes = exc.get_codes()
        response.data = error_body(
            code=codes if isinstance(codes, str) else exc.default_code, message=str(exc.detail)
        )
    return response


class BadRequest(exceptions.APIException):
    status_code = 400
    default_code = "bad_request"
    default_detail = "The request was refused: it is malformed or not allowed (e.g. an unknown host name)."


#: Seconds a client should wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 30
logger = logging.getLogger("django.request")


def unhandled_error(exc: BaseException | None, *, request: HttpRequest | None) -> Response:
    """The answer to an exception nobody handled: logged with its traceback (once: Django does
    not log the response again), reported to ``got_request_exception`` listeners (error
    trackers, the test client), and answered without internals: 503 ``unavailable`` with
    Retry-After when the database cannot be reached (stopped, restarting, a lost connection;
    also a deadlock or serialisation failure, which a retry resolves), else 500 ``server_error``."""
    status, body, headers = _unhandled_parts(exc)
    if request is not None:
        signals.got_request_exception.send(sender=None, request=request)
    logger.error(
        "%s: %s",
        "Service Unavailable" if status == 503 else "Internal Server Error",
        request.path if request is not None else "",
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
        extra={"status_code": status, "request": request},
    )
    response = Response(body, status=status, headers=headers)
    response._has_been_logged = True  # type: ignore[attr-defined]  # read by django.utils.log.log_response
    return response


def _unhandled_parts(exc: BaseException | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    if isinstance(exc, OperationalError | InterfaceError):
        message = "The database is unavailable or busy right now; nothing was changed. Try again shortly."
        return 503, error_body(code="unavailable", message=message), {"Retry-After": str(RETRY_AFTER_SECONDS)}
    message = "Something went wrong on our side; nothing was changed. The error has been logged."
    return 500, error_body(code="server_error", message=message), {}


def django_error_response(request: HttpRequest, exc: BaseException | None, *, status: int) -> JsonResponse:
    """The API's error shape for errors that Django answers itself, before or around DRF
    (``handler400``/``403``/``404``/``500`` in monitoring.urls for paths under /api/): a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE, a disallowed host, an exception in a middleware (the session or
    user read from a database that is down)."""
    headers: dict[str, str] = {}
    if isinstance(exc, RequestDataTooBig):
        status, body = (
            413,
            error_body(code=RequestTooLarge.default_code, message=str(RequestTooLarge.default_detail)),
        )
    elif status == 400:
        body = error_body(code=BadRequest.default_code, message=str(BadRequest.default_detail))
    elif status == 403:
        body = error_body(code="permission_denied", message=str(exceptions.PermissionDenied.default_detail))
    elif status == 404:
        body = error_body(code="not_found", message=NOT_FOUND_MESSAGE)
    else:  # 500: logged by Django already
        status, body, headers = _unhandled_parts(exc)
    if request.path.rstrip("/").endswith("/fhir"):
        # A FHIR endpoint's address (a version that is not a number, say): an OperationOutcome,
        # as the endpoint itself answers its errors (views.base.FhirApiView).
        from monitoring.exports.fhir import operation_outcome

        error = body["error"]
        outcome = operation_outcome(status=status, code=str(error["code"]), message=str(error["message"]))
        return JsonResponse(outcome, status=status, headers=headers, content_type="application/fhir+json")
    return JsonResponse(body, status=status, headers=headers)


def _flatten(detail: Any, path: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as ``{"answers.2.value": ["..."]}``: one flat, stable shape."""
    if isinstance(detail, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(detail, list) and detail and all(isinstance(d, str) for d in detail):
        return {path or "non_field_errors": [str(d) for d in detail]}
    if isinstance(detail, list):
        out = {}
        for index, value in enumerate(detail):
            if value:
                out.update(_flatten(value, f"{path}.{index}" if path else str(index)))
        return out
    return {path or "non_field_errors": [str(detail)]}


# --- Schema --------------------------------------------------------------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields", "problems"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable reason."},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Per invalid field (dotted paths for nested ones), its messages.",
                },
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `fields` names each invalid field; `problems` lists answer-level issues.",
    "401": (
        "No credentials, or a token that is unknown, revoked or expired (the message says which); "
        "or `reauthentication_required`: a browser session must confirm the password again first."
    ),
    "403": "Signed in, but this role may not do this (e.g. a therapist exporting clinic data).",
    "404": "No such object, or one you may not see (another clinic's data is never revealed).",
    "406": "The Accept header names no type this operation can produce.",
    "409": "The object's state forbids this now (e.g. answers already received, export not ready).",
    "422": "This Idempotency-Key was used for a different request (`idempotency_key_reused`).",
    "413": f"The body is larger than {MAX_BODY_BYTES // 1024} KB (`too_large`).",
    "415": "Send JSON (Content-Type: application/json).",
    "429": "Too many requests for this token; see Retry-After.",
    "503": "The database is unavailable or busy (`unavailable`); see Retry-After.",
}


#: An error of a FHIR endpoint (monitoring.exports.fhir.operation_outcome): the API's error code
#: in ``issue[0].details.coding[0].code``, its message in ``issue[0].diagnostics``.
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code", "diagnostics"],
                "properties": {
                    "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "details": {
                        "type": "object",
                        "properties": {
                            "coding": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"system": {"type": "string"}, "code": {"type": "string"}},
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}


def schema_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook: document every error an operation can answer with,
    in one place, instead of repeating them on each view. 401, 403, 406, 429 and 503 can happen
    anywhere; 404 where the path names an object; 400 where there is input or a write (a domain
    rule can refuse it); 413 and 415 where there is a body. Views declare 409 themselves, where it can
    happen."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            # A FHIR endpoint (views.base.FhirApiView) answers its errors as OperationOutcomes.
            fhir = str(operation.get("operationId", "")).endswith("_fhir")
            ref = {"$ref": "#/components/schemas/" + ("OperationOutcome" if fhir else "Error")}
            responses = operation.setdefault("responses", {})
            codes = {"401", "403", "406", "429", "503"}
            if "{" in path:
                codes.add("404")
            has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
            if operation.get("requestBody") or has_query or method in ("post", "put", "patch"):
                codes.add("400")
            if operation.get("requestBody"):
                codes |= {"413", "415"}
            if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                codes |= {"409", "422"}  # the key's first request still runs; the key reused
            media = {"application/json"}
            for response in responses.values():
                media |= {
                    m for m in response.get("content", {}) if m.endswith("+json") or m.endswith("+fhir")
                }
            for code in sorted(codes | {c for c in responses if c in ERROR_DESCRIPTIONS}):
                responses[code] = {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {m: {"schema": ref} for m in sorted(media)},
                    **(
                        {"headers": {"Retry-After": {"schema": {"type": "integer"}}}}
                        if code in ("429", "503")
                        else {}
                    ),
                }
    return result
