"""Patient-rated answers as FHIR R4: the instrument as a Questionnaire, each completed form as a
QuestionnaireResponse, in a Bundle of type ``collection``, for the health record.

Every resource is built as a dict, validated with the ``fhir.resources.R4B`` models (structure,
data types, cardinality) and then checked against the R4 value sets of the codes we use, which
the library does not check (it accepts ``status: "bogus"``): :func:`code_problems`. A resource
that fails either check is a programming error and stops the export.

The bundle is streamed entry by entry (Questionnaires first), so memory does not grow with the
number of responses. Which answers is the exporter's to say (``Exporter.answers``, implemented by
``ItemAnswers``); the renderer passes them in, so this module knows no report. Mapping
(docs/exports.md):

- ``Questionnaire.url`` is ``{SITE_URL}/fhir/Questionnaire/{code}``, ``version`` the instrument
  version; a response points at it as the canonical ``{url}|{version}``. Items are ``choice``
  items whose answer options are codings 1-5 (display: the scale label, with the R4
  ``ordinalValue`` extension carrying the number), coded with their subscale.
- ``QuestionnaireResponse.subject`` (and ``source``: the patient answered) is a logical reference
  by identifier: the patient's external id when there is one, otherwise the opaque patient code,
  or the pseudonym in a pseudonymised export. Never a name or label.
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
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinics.models import Clinic
from monitoring.exports.base import ExportFilters, ProgressCallback, pseudonym
from monitoring.models import Answer, Instrument, Response

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
#: subjectType is a resource type; a questionnaire about patients names exactly this one.
SUBJECT_TYPES = frozenset({"Patient"})
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]{0,254}$")

RESPONSES_PER_QUERY = 2_000


def base_url() -> str:
    return f"{settings.SITE_URL}/fhir"


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
            problems += [f"entry[{i}] {p}" for p in code_problems(entry.get("resource") or {})]
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
    else:
        problems.append(f"unexpected resource type '{kind}'")
    return problems


def _validated(model: type[Any], data: dict[str, Any]) -> str:
    """Validate ``data`` with the R4B model and our code checks; return the resource as JSON."""
    problems = code_problems(data)
    if problems:
        raise ValueError("Invalid FHIR codes: " + "; ".join(problems))
    return str(model.model_validate(data).model_dump_json(exclude_none=True))


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
                    "system": f"{base_url()}/CodeSystem/{instrument.code}-subscales",
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


def patient_identifier(
    *, clinic: Clinic, patient_code: object, external_id: str, pseudonymise: bool
) -> dict[str, str]:
    """The patient's logical identifier: external id, else opaque code; the pseudonym if asked."""
    if pseudonymise:
        return {
            "system": f"{base_url()}/clinics/{clinic.code}/pseudonym",
            "value": pseudonym(clinic=clinic, kind="patient", value=patient_code),
        }
    if external_id:
        return {"system": f"{base_url()}/clinics/{clinic.code}/external-id", "value": external_id}
    return {"system": f"{base_url()}/patient-code", "value": str(patient_code)}


def bundle_stream(
    *,
    answers: QuerySet[Answer],
    clinic: Clinic,
    filters: ExportFilters,
    on_rows: ProgressCallback | None = None,
) -> Iterator[bytes]:
    """The Bundle of ``answers`` (the exporter's, ``Exporter.answers``) as JSON, written entry by
    entry; ``on_rows`` gets the answers written so far."""
    responses = (
        Response.objects.filter(pk__in=answers.values("response_id"))
        .order_by("session__episode__patient_id", "session__episode__started_on", "session__number")
        .values_list(
            "pk",
            "instrument_id",
            "submitted_at",
            "session__code",
            "session__number",
            "session__date",
            "session__episode__patient__code",
            "session__episode__patient__external_id",
        )
    )
    header = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
    }
    opening = _validated(Bundle, header)
    yield (opening[:-1] + ',"entry":[').encode()

    language = clinic.default_language
    instruments = Instrument.objects.filter(pk__in=answers.values("response__instrument_id")).order_by(
        "code", "version"
    )
    first = True
    for instrument in instruments:
        resource = _validated(Questionnaire, questionnaire_resource(instrument=instrument, language=language))
        entry = (
            f'{{"fullUrl":{json.dumps(f"{base_url()}/Questionnaire/{instrument.code}-{instrument.version}")},'
            f'"resource":{resource}}}'
        )
        yield (("" if first else ",") + entry).encode()
        first = False
    canonical = {
        i.pk: _AnswerCoding.of(i, language)
        for i in Instrument.objects.prefetch_related("translations", "items")
    }

    written = 0
    batch: list[tuple[Any, ...]] = []
    for row in responses.iterator(chunk_size=RESPONSES_PER_QUERY):
        batch.append(row)
        if len(batch) >= RESPONSES_PER_QUERY:
            for entry, n in _response_entries(batch, clinic=clinic, filters=filters, canonical=canonical):
                yield (("" if first else ",") + entry).encode()
                first = False
                written += n
            batch = []
            if on_rows:
                on_rows(written)
    for entry, n in _response_entries(batch, clinic=clinic, filters=filters, canonical=canonical):
        yield (("" if first else ",") + entry).encode()
        first = False
        written += n
    if on_rows:
        on_rows(written)
    yield b"]}"


def _response_entries(
    batch: list[tuple[Any, ...]],
    *,
    clinic: Clinic,
    filters: ExportFilters,
    canonical: Mapping[int, _AnswerCoding],
) -> Iterator[tuple[str, int]]:
    if not batch:
        return
    answers: dict[int, list[tuple[int, int]]] = {}
    for response_id, number, value in (
        Answer.objects.filter(response_id__in=[r[0] for r in batch])
        .order_by("response_id", "item__number")
        .values_list("response_id", "item__number", "value")
    ):
        answers.setdefault(response_id, []).append((number, value))
    for pk, instrument_id, submitted, session_code, number, day, patient_code, external_id in batch:
        key = uuid.uuid5(clinic.code, f"response:{pk}")
        who = patient_identifier(
            clinic=clinic,
            patient_code=patient_code,
            external_id=external_id,
            pseudonymise=filters.pseudonymise,
        )
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
            "id": str(key),
            "identifier": {"system": f"{base_url()}/clinics/{clinic.code}/response", "value": str(key)},
            "questionnaire": coding.questionnaire,
            "status": "completed",
            "subject": {"identifier": who, "type": "Patient"},
            "encounter": encounter,
            "authored": timezone.localtime(submitted).isoformat(),
            "source": {"identifier": who, "type": "Patient"},
            "item": answered,
        }
        yield (
            f'{{"fullUrl":"urn:uuid:{key}","resource":{_validated(QuestionnaireResponse, resource)}}}',
            len(items),
        )
