"""Every write in the monitoring app goes through a function here (views and commands are thin)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Session
from monitoring.instruments.definition import InstrumentDefinition, bundled_definitions, read_definition
from monitoring.models import Answer, Instrument, InstrumentItem, InstrumentTranslation, Response


def instrument_load(*, definition: InstrumentDefinition, using: str = "default") -> tuple[Instrument, str]:
    """Store a validated definition; return the instrument and what happened.

    A new (code, version) is created. For a version already loaded, the structure must be
    identical (answers point at its items); then the wording for the definition's language is
    added or updated, which leaves every stored answer as it was.
    """
    with transaction.atomic(using=using):
        instrument = (
            Instrument.objects.using(using)
            .select_for_update()
            .filter(code=definition.code, version=definition.version)
            .first()
        )
        if instrument is None:
            instrument = Instrument.objects.using(using).create(
                code=definition.code,
                version=definition.version,
                rater=definition.rater,
                scale_min=definition.scale_min,
                scale_max=definition.scale_max,
                subscales=list(definition.subscales),
            )
            InstrumentItem.objects.using(using).bulk_create(
                InstrumentItem(instrument=instrument, number=i.number, subscale=i.subscale, reverse_keyed=i.reverse_keyed)
                for i in definition.items
            )
            action = "created"
        else:
            if instrument_structure(instrument=instrument) != definition.structure():
                raise ApplicationError(
                    f"{definition.code} version {definition.version} is already loaded with a different "
                    "structure, and stored answers depend on it. Give the new structure a new version number."
                )
            action = "updated"
        _, created = InstrumentTranslation.objects.using(using).update_or_create(
            instrument=instrument,
            language=definition.language,
            defaults={
                "name": definition.name,
                "instructions": definition.instructions,
                "scale_labels": list(definition.scale_labels),
                "item_texts": {str(i.number): i.text for i in definition.items},
                "subscale_names": definition.subscale_names,
                "source": definition.source,
            },
        )
        if action == "updated" and created:
            action = "translated"
    return instrument, action


def instrument_structure(*, instrument: Instrument) -> dict[str, object]:
    return {
        "rater": instrument.rater,
        "scale": [instrument.scale_min, instrument.scale_max],
        "subscales": list(instrument.subscales),
        "items": [[i.number, i.subscale, i.reverse_keyed] for i in instrument.items.order_by("number")],
    }


def instruments_load_bundled(*, using: str = "default") -> None:
    for path in bundled_definitions():
        instrument_load(definition=read_definition(Path(path)), using=using)


def response_create(
    *,
    session: Session,
    instrument: Instrument,
    answers: Mapping[int, int],
    source: str,
    entered_by: AbstractBaseUser | None = None,
    submitted_at: datetime | None = None,
) -> Response:
    """Store one completed questionnaire with its answers, in one transaction, or nothing.

    Forms require every item; the database refuses a second response of the same rater for the
    session, which is what makes a double submission end with exactly one stored response.
    """
    items = {i.number: i for i in instrument.items.all()}
    problems = response_problems(instrument=instrument, items=items, answers=answers, require_all=True)
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems)
    try:
        with transaction.atomic():
            response = Response.objects.create(
                session=session,
                instrument=instrument,
                rater=instrument.rater,
                source=source,
                submitted_at=submitted_at or timezone.now(),
                entered_by=entered_by,
            )
            Answer.objects.bulk_create(
                Answer(response=response, item=items[number], value=value) for number, value in answers.items()
            )
    except IntegrityError as exc:
        if Response.objects.filter(session=session, rater=instrument.rater).exists():
            raise ApplicationError("A response for this session has already been received.") from exc
        raise
    return response


def response_problems(
    *, instrument: Instrument, items: Mapping[int, InstrumentItem], answers: Mapping[int, int], require_all: bool
) -> list[str]:
    problems = []
    for number, value in sorted(answers.items()):
        if number not in items:
            problems.append(f"Item {number} is not part of {instrument}.")
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"Item {number}: the answer must be a whole number.")
        elif not instrument.scale_min <= value <= instrument.scale_max:
            problems.append(
                f"Item {number}: {value} is outside the scale ({instrument.scale_min} to {instrument.scale_max})."
            )
    if require_all:
        missing = sorted(set(items) - set(answers))
        if missing:
            problems.append("No answer for item " + ", ".join(map(str, missing)) + ".")
    return problems
