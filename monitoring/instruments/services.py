"""Loading questionnaire definitions into the database (``manage.py load_instrument`` and the
bundled instruments at migrate time)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from clinics.errors import ApplicationError
from monitoring.instruments.definition import InstrumentDefinition, bundled_definitions, read_definition
from monitoring.models import (
    Instrument,
    InstrumentItem,
    InstrumentTranslation,
)


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
                kind=definition.kind,
                scoring=definition.scoring,
                scale_min=definition.scale_min,
                scale_max=definition.scale_max,
                subscales=list(definition.subscales),
            )
            InstrumentItem.objects.using(using).bulk_create(
                InstrumentItem(
                    instrument=instrument,
                    number=i.number,
                    subscale=i.subscale,
                    reverse_keyed=i.reverse_keyed,
                    code=i.code,
                )
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
        "kind": instrument.kind,
        "scale": [instrument.scale_min, instrument.scale_max],
        "subscales": list(instrument.subscales),
        "items": [
            [i.number, i.subscale, i.reverse_keyed, i.code] for i in instrument.items.order_by("number")
        ],
        "scoring": instrument.scoring,
    }


def instruments_load_bundled(*, using: str = "default") -> None:
    for path in bundled_definitions():
        instrument_load(definition=read_definition(Path(path)), using=using)
