"""Patient-rated answers as FHIR R4: the instrument as a Questionnaire, Bordin's own codes as
CodeSystems, each completed form as a QuestionnaireResponse, in a Bundle of type ``collection``
(to file) or ``transaction`` (to load into a FHIR server: conditional creates), for the health
record.

Every resource is built as a dict, validated with the ``fhir.resources.R4B`` models (structure,
data types, cardinality) and then checked against the R4 value sets of the codes we use, which
the library does not check (it accepts ``status: "bogus"``): :func:`code_problems`. A resource
that fails either check is a programming error and stops the export.

The bundle is streamed entry by entry (Questionnaires first), so memory does not grow with the
number of responses. Which answers is the exporter's to say (``Exporter.answers``, implemented by
``ItemAnswers``); the renderer passes them in, so this module knows no report. Mapping
(docs/exports.md):

- Canonical URLs start with ``settings.FHIR_CANONICAL_BASE`` (default ``https://bordin.app/fhir``),
  a fixed name rather than the deployment's address, so codes mean the same everywhere.
- ``Questionnaire.url`` is ``{base}/Questionnaire/{code}``, ``version`` the instrument
  version; a response points at it as the canonical ``{url}|{version}``. Items are ``choice``
  items whose answer options are codings 1-5 (display: the scale label, with the R4
  ``ordinalValue`` extension carrying the number), coded with their subscale.
- ``QuestionnaireResponse.subject`` is a logical reference by identifier: the patient's external id
  when there is one, otherwise the opaque patient code, or the pseudonym in a pseudonymised
  export. Never a name or label. ``author`` and ``source`` are who rated: the Patient for a
  patient rating, the Practitioner (by the membership's opaque code, or its pseudonym) for a
  therapist rating.
- In a pseudonymised export every identifier (patient, practitioner, response id and identifier)
  is a keyed hash under the export's key (``base.pseudonym``) and sessions are not identified.
- ``authored`` is when the form was submitted; ``encounter`` names the session and its date.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinics.models import Clinic, Membership
from monitoring.exports.base import ExportFilters, ProgressCallback, pseudonym
from monitoring.models import Answer, Instrument, Rater, Response

#: R4 value sets of the codes this module writes (hl7.org/fhir/R4/valueset-*.html).
BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
PUBLICATION_STATUSES = frozenset({"draft", "active", "retired", "unknown"})
#: item-type without the abstract "question" code, which instances may not use.
ITEM_TYPES = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)
RESPONSE_STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
CODESYSTEM_CONTENT = frozenset({"not-present", "example", "fragment", "complete", "supplement"})
HTTP_VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
#: Who may author a response: the patient, or the practitioner in a role.
AUTHOR_TYPES = frozenset({"Patient", "Practitioner", "PractitionerRole"})
#: subjectType is a resource type; a questionnaire about patients names exactly this one.
SUBJECT_TYPES = frozenset({"Patient"})
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]{0,254}$")

RESPONSES_PER_QUERY = 2_000


def base_url() -> str:
    """The canonical base of Bordin's FHIR names (``settings.FHIR_CANONICAL_BASE``)."""
    return str(settings.FHIR_CANONICAL_BASE).rstrip("/")


def questionnaire_url(instrument: Instrument) -> str:
    return f"{base_url()}/Questionnaire/{instrument.code}"


def questionnaire_canonical(instrument: Instrument) -> str:
    return f"{questionnaire_url(instrument)}|{instrument.version}"


def code_problems(resource: Mapping[str, Any]) -> list[str]:
    """Codes in ``resource`` (a Bundle, Questionnaire or QuestionnaireResponse as JSON) that are
    not in the R4 value set of their element. Empty when every code is valid."""
    problems: list[str] = []
    kind = resource.get("resourceType")

    def check(value: object, allowed: frozenset[str], where: str) -> None:
        if value not in allowed:
            problems.append(f"{kind}.{where}: '{value}' is not an allowed code")

    if kind == "Bundle":
        check(resource.get("type"), BUNDLE_TYPES, "type")
        for i, entry in enumerate(resource.get("entry") or []):
            if "request" in entry:
                check(entry["request"].get("method"), HTTP_VERBS, f"entry[{i}].request.method")
            problems += [f"entry[{i}] {p}" for p in code_problems(entry.get("resource") or {})]
    elif kind == "CodeSystem":
        check(resource.get("status"), PUBLICATION_STATUSES, "status")
        check(resource.get("content"), CODESYSTEM_CONTENT, "content")
    elif kind == "Questionnaire":
        check(resource.get("status"), PUBLICATION_STATUSES, "status")
        for subject in resource.get("subjectType") or []:
            check(subject, SUBJECT_TYPES, "subjectType")
        if "name" in resource and not _NAME.match(str(resource["name"])):
            problems.append(f"Questionnaire.name: '{resource['name']}' is not a computable name")

        def items(nodes: list[Mapping[str, Any]], path: str) -> None:
            for n, item in enumerate(nodes):
                check(item.get("type"), ITEM_TYPES, f"{path}[{n}].type")
                items(item.get("item") or [], f"{path}[{n}].item")

        items(resource.get("item") or [], "item")
    elif kind == "QuestionnaireResponse":
        check(resource.get("status"), RESPONSE_STATUSES, "status")
        for role in ("author", "source"):
            if role in resource:
                check(resource[role].get("type"), AUTHOR_TYPES, f"{role}.type")
    else:
        problems.append(f"unexpected resource type '{kind}'")
    return problems


def _validated(model: type[Any], data: dict[str, Any]) -> str:
    """Validate ``data`` with the R4B model and our code checks; return the resource as JSON."""
    problems = code_problems(data)
    if problems:
        raise ValueError("Invalid FHIR codes: " + "; ".join(problems))
    return str(model.model_validate(data).model_dump_json(exclude_none=True))


#: OperationOutcome issue types (R4 value set issue-type) by HTTP status.
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    429: "throttled",
}


#: The API's error codes (docs/api.md, "Errors"), published as the CodeSystem ``api-errors`` that
#: OperationOutcome.issue.details names. "fragment": a newer release may add codes.
API_ERROR_CODES = {
    "invalid": "Some values are not valid (the message and fields say which).",
    "parse_error": "The body is not JSON that parses.",
    "too_deep": "The JSON nests deeper than 20 levels.",
    "bad_request": "The request was refused before it reached the API (for example an unknown host name).",
    "no_episode": "The patient has no open episode of care.",
    "not_authenticated": "No credentials were given.",
    "token_malformed": "The token is not a Bordin token.",
    "token_unknown": "The token is not known.",
    "token_revoked": "The token was revoked.",
    "token_expired": "The token has expired.",
    "token_inactive": "The token's owner no longer works in the clinic.",
    "session_ended": "The browser session ended (idle or absolute timeout).",
    "reauthentication_required": "Confirm your password again for this action.",
    "permission_denied": "Your role may not do this.",
    "mfa_required": "Set up two-factor sign-in first.",
    "not_found": "No such object, or one you may not see.",
    "method_not_allowed": "This method is not allowed here.",
    "not_acceptable": "None of the accepted media types can be answered.",
    "unsupported_media_type": "The body is not JSON.",
    "used": "Answers for this session have already been received.",
    "acknowledged": "The flag or safety alert has already been acknowledged or followed up.",
    "not_ready": "The export is not ready (queued, running or failed).",
    "external_id_taken": "The appointment id is already used for another patient.",
    "idempotency_in_progress": "The first request with this Idempotency-Key is still running.",
    "idempotency_key_reused": "This Idempotency-Key was sent before with another request.",
    "too_large": "The body is over 64 KB.",
    "throttled": "Too many requests for this token; retry after Retry-After seconds.",
    "server_error": "An error on our side (logged).",
    "unavailable": "The database is unavailable or busy; retry after Retry-After seconds.",
}


def api_errors_codesystem() -> dict[str, Any]:
    concepts = [
        {"code": code, "display": code.replace("_", " "), "definition": text}
        for code, text in API_ERROR_CODES.items()
    ]
    return {
        "resourceType": "CodeSystem",
        "id": "api-errors",
        "url": f"{base_url()}/CodeSystem/api-errors",
        "name": "BordinApiErrors",
        "title": "Bordin API error codes",
        "status": "active",
        "content": "fragment",
        "caseSensitive": True,
        "count": len(concepts),
        "concept": concepts,
    }


def operation_outcome(*, status: int, code: str, message: str) -> dict[str, Any]:
    """An error of a FHIR endpoint as an R4 OperationOutcome (``code``: Bordin's error code)."""
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": ISSUE_TYPES.get(status, "processing" if status < 500 else "exception"),
        "diagnostics": message or "The request failed.",
    }
    if code:
        issue["details"] = {"coding": [{"system": f"{base_url()}/CodeSystem/api-errors", "code": code}]}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


LOINC = "http://loinc.org"
#: linkId of an outcome measure's total score item (LOINC-coded, e.g. 44261-6 for PHQ-9).
TOTAL_LINK_ID = "total"


@dataclass(frozen=True)
class _AnswerCoding:
    """How a response to one instrument version refers to it and codes its answers; for an
    outcome measure also how to score it (its total goes into the response, LOINC-coded)."""

    questionnaire: str
    system: str
    labels: dict[int, str]
    codes: dict[int, str]  # value -> answer code of ``system``
    items: int = 0  # an outcome measure's item count (0: no total item)
    max_missing: int = 0

    @classmethod
    def of(cls, instrument: Instrument, language: str) -> _AnswerCoding:
        labels = list(instrument.translation(language).scale_labels) if instrument.translations.all() else []
        values = range(instrument.scale_min, instrument.scale_max + 1)
        loinc = list(instrument.scoring.get("answer_codes") or [])
        outcome = instrument.kind == Instrument.Kind.OUTCOME
        return cls(
            questionnaire=questionnaire_canonical(instrument),
            system=answer_system(instrument),
            labels={instrument.scale_min + i: str(label) for i, label in enumerate(labels)},
            codes=dict(zip(values, loinc, strict=True)) if loinc else {v: str(v) for v in values},
            items=len(instrument.items.all()) if outcome else 0,
            max_missing=int(instrument.scoring.get("max_missing", 0)) if outcome else 0,
        )

    def total(self, values: list[int]) -> int | None:
        """The outcome measure's total (prorated with few items missing; methods.md 6.1)."""
        if not self.items or not values or self.items - len(values) > self.max_missing:
            return None
        return sum(values) if len(values) == self.items else round(sum(values) / len(values) * self.items)


def answer_system(instrument: Instrument) -> str:
    """LOINC for a measure whose answers are LOINC-coded (PHQ-9, GAD-7); Bordin's own otherwise."""
    if instrument.scoring.get("answer_codes"):
        return LOINC
    return f"{base_url()}/CodeSystem/{instrument.code}-answers"


def _computable_name(code: str) -> str:
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", code) if part)
    return name if name[:1].isalpha() else "Q" + name


def questionnaire_resource(*, instrument: Instrument, language: str) -> dict[str, Any]:
    wording = instrument.translation(language)
    labels = list(wording.scale_labels)
    codes = list(instrument.scoring.get("answer_codes") or [])
    options = [
        {
            "valueCoding": {
                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": value}],
                "system": answer_system(instrument),
                "code": codes[value - instrument.scale_min] if codes else str(value),
                "display": labels[value - instrument.scale_min]
                if value - instrument.scale_min < len(labels)
                else str(value),
            }
        }
        for value in range(instrument.scale_min, instrument.scale_max + 1)
    ]
    items = [
        {
            "linkId": str(item.number),
            "code": [
                {"system": LOINC, "code": item.code, "display": wording.item_texts.get(str(item.number), "")}
                if item.code
                else {
                    "system": subscale_system(instrument),
                    "code": item.subscale,
                    "display": wording.subscale_names.get(item.subscale, item.subscale),
                }
            ],
            "text": wording.item_texts.get(str(item.number), f"Item {item.number}"),
            "type": "choice",
            "required": True,
            "answerOption": options,
        }
        for item in instrument.items.order_by("number")
    ]
    loinc = instrument.scoring.get("loinc") or {}
    if instrument.kind == Instrument.Kind.OUTCOME:
        total: dict[str, Any] = {
            "linkId": TOTAL_LINK_ID,
            "text": f"{wording.name} total score",
            "type": "integer",
        }
        if loinc.get("total"):
            total["code"] = [
                {"system": LOINC, "code": loinc["total"], "display": f"{wording.name} total score"}
            ]
        items.append({**total, "required": False, "readOnly": True})
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"{instrument.code}-{instrument.version}",
        "url": questionnaire_url(instrument),
        "version": str(instrument.version),
        "name": _computable_name(instrument.code),
        "title": wording.name,
        "status": "active",
        "subjectType": ["Patient"],
        "language": wording.language,
        "item": items,
    }
    if loinc.get("panel"):
        resource["code"] = [{"system": LOINC, "code": loinc["panel"], "display": wording.name}]
    if wording.instructions:
        resource["description"] = wording.instructions
    if wording.source:
        resource["copyright"] = wording.source
    return resource


def subscale_system(instrument: Instrument) -> str:
    return f"{base_url()}/CodeSystem/{instrument.code}-subscales"


def codesystem_resources(*, instrument: Instrument, language: str) -> list[dict[str, Any]]:
    """Bordin's own code systems that ``instrument``'s Questionnaire uses, as CodeSystem resources:
    its answer codes (unless they are LOINC's) and its subscales (for items without a LOINC code)."""
    wording = instrument.translation(language)
    labels = list(wording.scale_labels)
    systems: list[dict[str, Any]] = []
    common = {
        "resourceType": "CodeSystem",
        "version": str(instrument.version),
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
        "language": wording.language,
    }
    if answer_system(instrument) != LOINC:
        concepts = [
            {
                "code": str(value),
                "display": labels[value - instrument.scale_min]
                if value - instrument.scale_min < len(labels)
                else str(value),
            }
            for value in range(instrument.scale_min, instrument.scale_max + 1)
        ]
        systems.append(
            {
                **common,
                "id": f"{instrument.code}-answers",
                "url": answer_system(instrument),
                "name": _computable_name(f"{instrument.code}-answers"),
                "title": f"{wording.name}: answer scale",
                "count": len(concepts),
                "concept": concepts,
            }
        )
    subscales = sorted({item.subscale for item in instrument.items.all() if not item.code and item.subscale})
    if subscales:
        concepts = [{"code": code, "display": wording.subscale_names.get(code, code)} for code in subscales]
        systems.append(
            {
                **common,
                "id": f"{instrument.code}-subscales",
                "url": subscale_system(instrument),
                "name": _computable_name(f"{instrument.code}-subscales"),
                "title": f"{wording.name}: subscales",
                "count": len(concepts),
                "concept": concepts,
            }
        )
    return systems


def codesystem_find(*, id: str, version: int | None = None, language: str = "en") -> dict[str, Any] | None:
    """The code system ``id`` (``{instrument}-answers``, ``{instrument}-subscales``, or the API's
    error codes ``api-errors``) as a
    CodeSystem resource, of ``version`` or of the newest instrument version that has it; None
    when there is none. Read from the loaded instruments, as the bundles build them."""
    if id == "api-errors":
        return api_errors_codesystem()
    code = re.sub(r"-(answers|subscales)$", "", id)
    if code == id:
        return None
    instruments = Instrument.objects.filter(code=code).prefetch_related("translations", "items")
    if version is not None:
        instruments = instruments.filter(version=version)
    for instrument in instruments.order_by("-version"):
        for resource in codesystem_resources(instrument=instrument, language=language):
            if resource["id"] == id:
                return resource
    return None


def patient_identifier(
    *, clinic: Clinic, patient_code: object, external_id: str, filters: ExportFilters
) -> dict[str, str]:
    """The patient's logical identifier: external id, else opaque code; the pseudonym if asked."""
    if filters.pseudonymise:
        return {
            "system": f"{base_url()}/clinics/{clinic.code}/pseudonym",
            "value": pseudonym(clinic=clinic, kind="patient", value=patient_code, key=filters.pseudonym_key),
        }
    if external_id:
        return {"system": f"{base_url()}/clinics/{clinic.code}/external-id", "value": external_id}
    return {"system": f"{base_url()}/patient-code", "value": str(patient_code)}


def practitioner_identifier(
    *, clinic: Clinic, membership_code: object, filters: ExportFilters
) -> dict[str, str]:
    """The therapist's logical identifier: the membership's opaque code (never a name), or its
    pseudonym in a pseudonymised export."""
    if filters.pseudonymise:
        return {
            "system": f"{base_url()}/clinics/{clinic.code}/practitioner-pseudonym",
            "value": pseudonym(
                clinic=clinic, kind="therapist", value=membership_code, key=filters.pseudonym_key
            ),
        }
    return {"system": f"{base_url()}/clinics/{clinic.code}/practitioner", "value": str(membership_code)}


#: The columns of a response row that ``_response_entries`` reads.
RESPONSE_ROW = (
    "pk",
    "instrument_id",
    "submitted_at",
    "session__code",
    "session__number",
    "session__date",
    "session__episode__patient__code",
    "session__episode__patient__external_id",
    "rater",
    "session__episode__therapist_id",
)


def _entry(*, full_url: str, resource: str, request: dict[str, str] | None) -> str:
    parts = [f'"fullUrl":{json.dumps(full_url)}', f'"resource":{resource}']
    if request is not None:
        parts.append(f'"request":{json.dumps(request)}')
    return "{" + ",".join(parts) + "}"


def _conditional(kind: str, query: str) -> dict[str, str]:
    """A conditional create: the server creates the resource unless one matches ``query``."""
    return {"method": "POST", "url": kind, "ifNoneExist": query}


def bundle_stream(
    *,
    answers: QuerySet[Answer],
    clinic: Clinic,
    filters: ExportFilters,
    on_rows: ProgressCallback | None = None,
) -> Iterator[bytes]:
    """The Bundle of ``answers`` (the exporter's, ``Exporter.answers``) as JSON, written entry by
    entry; ``on_rows`` gets the answers written so far. With ``filters.fhir_bundle ==
    "transaction"`` every entry carries a conditional create (by url and version for definitions,
    by identifier for responses), so loading the same bundle twice creates nothing new."""
    transaction = filters.fhir_bundle == "transaction"
    responses = (
        Response.objects.filter(pk__in=answers.values("response_id"))
        .order_by("session__episode__patient_id", "session__episode__started_on", "session__number")
        .values_list(*RESPONSE_ROW)
    )
    header = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "transaction" if transaction else "collection",
        "timestamp": timezone.now().isoformat(),
    }
    opening = _validated(Bundle, header)
    yield (opening[:-1] + ',"entry":[').encode()

    language = clinic.default_language
    instruments = (
        Instrument.objects.filter(pk__in=answers.values("response__instrument_id"))
        .prefetch_related("translations", "items")
        .order_by("code", "version")
    )
    first = True
    for instrument in instruments:
        data = questionnaire_resource(instrument=instrument, language=language)
        definitions: list[tuple[str, dict[str, Any], type[Any]]] = [
            ("Questionnaire", data, Questionnaire),
            *[
                ("CodeSystem", cs, CodeSystem)
                for cs in codesystem_resources(instrument=instrument, language=language)
            ],
        ]
        for kind, resource, model in definitions:
            entry = _entry(
                full_url=f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, resource['url'] + '|' + resource['version'])}"
                if transaction
                else f"{base_url()}/{kind}/{resource['id']}",
                resource=_validated(model, resource),
                request=_conditional(kind, f"url={resource['url']}&version={resource['version']}")
                if transaction
                else None,
            )
            yield (("" if first else ",") + entry).encode()
            first = False
    canonical = {
        i.pk: _AnswerCoding.of(i, language)
        for i in Instrument.objects.prefetch_related("translations", "items")
    }
    practitioners = dict(Membership.objects.filter(clinic=clinic).values_list("user_id", "code"))

    written = 0
    batch: list[tuple[Any, ...]] = []
    for row in responses.iterator(chunk_size=RESPONSES_PER_QUERY):
        batch.append(row)
        if len(batch) >= RESPONSES_PER_QUERY:
            for entry, n in _response_entries(
                batch, clinic=clinic, filters=filters, canonical=canonical, practitioners=practitioners
            ):
                yield (("" if first else ",") + entry).encode()
                first = False
                written += n
            batch = []
            if on_rows:
                on_rows(written)
    for entry, n in _response_entries(
        batch, clinic=clinic, filters=filters, canonical=canonical, practitioners=practitioners
    ):
        yield (("" if first else ",") + entry).encode()
        first = False
        written += n
    if on_rows:
        on_rows(written)
    yield b"]}"


def response_resource(*, response: Response, filters: ExportFilters | None = None) -> str:
    """One stored response as a QuestionnaireResponse (JSON), exactly as in the bundle."""
    filters = filters or ExportFilters()
    patient = response.session.episode.patient
    row = Response.objects.filter(pk=response.pk).values_list(*RESPONSE_ROW).get()
    coding = {response.instrument_id: _AnswerCoding.of(response.instrument, patient.clinic.default_language)}
    practitioners = dict(Membership.objects.filter(clinic=patient.clinic).values_list("user_id", "code"))
    entry, _ = next(
        _response_entries(
            [row], clinic=patient.clinic, filters=filters, canonical=coding, practitioners=practitioners
        )
    )
    return json.dumps(json.loads(entry)["resource"])


def _response_entries(
    batch: list[tuple[Any, ...]],
    *,
    clinic: Clinic,
    filters: ExportFilters,
    canonical: Mapping[int, _AnswerCoding],
    practitioners: Mapping[int, object],
) -> Iterator[tuple[str, int]]:
    if not batch:
        return
    transaction = filters.fhir_bundle == "transaction"
    answers: dict[int, list[tuple[int, int]]] = {}
    for response_id, number, value in (
        Answer.objects.filter(response_id__in=[r[0] for r in batch])
        .order_by("response_id", "item__number")
        .values_list("response_id", "item__number", "value")
    ):
        answers.setdefault(response_id, []).append((number, value))
    for (
        pk,
        instrument_id,
        submitted,
        session_code,
        number,
        day,
        patient_code,
        external_id,
        rater,
        therapist_id,
    ) in batch:
        if filters.pseudonymise:
            key = pseudonym(clinic=clinic, kind="response", value=pk, key=filters.pseudonym_key)
            response_system = f"{base_url()}/clinics/{clinic.code}/response-pseudonym"
        else:
            key = str(uuid.uuid5(clinic.code, f"response:{pk}"))
            response_system = f"{base_url()}/clinics/{clinic.code}/response"
        who = patient_identifier(
            clinic=clinic, patient_code=patient_code, external_id=external_id, filters=filters
        )
        rated_by: dict[str, Any] = {"identifier": who, "type": "Patient"}
        if rater == Rater.THERAPIST:
            membership = practitioners.get(therapist_id, f"user-{therapist_id}")
            rated_by = {
                "identifier": practitioner_identifier(
                    clinic=clinic, membership_code=membership, filters=filters
                ),
                "type": "Practitioner",
            }
        encounter: dict[str, Any] = {"display": f"Session {number}, {day.isoformat()}"}
        if not filters.pseudonymise:
            encounter["identifier"] = {
                "system": f"{base_url()}/clinics/{clinic.code}/session",
                "value": str(session_code),
            }
        items = answers.get(pk, [])
        coding = canonical[instrument_id]
        answered: list[dict[str, Any]] = [
            {
                "linkId": str(item),
                "answer": [
                    {
                        "valueCoding": {
                            "system": coding.system,
                            "code": coding.codes.get(value, str(value)),
                            "display": coding.labels.get(value, str(value)),
                        }
                    }
                ],
            }
            for item, value in items
        ]
        total = coding.total([value for _, value in items])
        if total is not None:
            answered.append({"linkId": TOTAL_LINK_ID, "answer": [{"valueInteger": total}]})
        resource = {
            "resourceType": "QuestionnaireResponse",
            "id": key,
            "identifier": {"system": response_system, "value": key},
            "questionnaire": coding.questionnaire,
            "status": "completed",
            "subject": {"identifier": who, "type": "Patient"},
            "encounter": encounter,
            "authored": timezone.localtime(submitted).isoformat(),
            "author": rated_by,
            "source": rated_by,
            "item": answered,
        }
        full_url = (
            f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, response_system + '|' + key)}"
            if filters.pseudonymise
            else f"urn:uuid:{key}"
        )
        request = (
            _conditional("QuestionnaireResponse", f"identifier={response_system}|{key}")
            if transaction
            else None
        )
        yield (
            _entry(full_url=full_url, resource=_validated(QuestionnaireResponse, resource), request=request),
            len(items),
        )
