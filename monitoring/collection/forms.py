"""Questionnaire answers from a POST, shared by the patient link, the tablet, staff entry of a
paper form and the therapist's own rating. Radio groups are built from the instrument's data,
so a new instrument or translation needs no form code."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _

from clinics.validation import control_character
from monitoring.models import Instrument, PatientMessage


def field_prefix(instrument: Instrument) -> str:
    """Form field names: ``item_<n>`` for the alliance form, ``<code>_<n>`` for an outcome
    measure (``phq9_9``), so one page can carry several questionnaires."""
    return "item_" if instrument.measure == "alliance" else f"{instrument.code}_"


def answers_from_post(
    data: QueryDict, instrument: Instrument
) -> tuple[dict[int, int], dict[int, str], dict[int, str]]:
    """Read the instrument's fields (``field_prefix``): the valid answers, what was posted (to
    show again) and errors.

    Tampered values (outside the scale, not a number) get the same specific message as a missing
    one would: choose one of the answers shown.
    """
    answers: dict[int, int] = {}
    posted: dict[int, str] = {}
    errors: dict[int, str] = {}
    prefix = field_prefix(instrument)
    for item in instrument.items.all():
        raw = data.get(f"{prefix}{item.number}", "").strip()
        if not raw:
            errors[item.number] = _("Please choose an answer for this statement.")
            continue
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not instrument.scale_min <= value <= instrument.scale_max:
            errors[item.number] = _("Please choose one of the answers shown for this statement.")
            continue
        answers[item.number] = value
        posted[item.number] = raw
    return answers, posted, errors


def questions(
    instrument: Instrument,
    language: str,
    posted: dict[int, str] | None = None,
    errors: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    posted, errors = posted or {}, errors or {}
    wording = instrument.translation(language)
    values = range(instrument.scale_min, instrument.scale_max + 1)
    prefix = field_prefix(instrument)
    risk = set(instrument.scoring.get("risk_items") or [])
    return [
        {
            "number": item.number,
            "name": f"{prefix}{item.number}",
            "id": f"{prefix.replace('_', '-')}{item.number}",
            "risk": item.number in risk,
            "text": wording.item_texts.get(str(item.number), ""),
            "options": [{"value": str(v), "label": wording.scale_labels[i]} for i, v in enumerate(values)],
            "answer": posted.get(item.number, ""),
            "error": errors.get(item.number, ""),
        }
        for item in instrument.items.all()
    ]


#: The form field of the optional message at the end of the patient's form.
MESSAGE_FIELD = "message"


def message_from_post(data: QueryDict) -> tuple[str, str]:
    """The optional message to the therapist: what was typed (to show again), and an error in
    the patient's language ("" if it can be stored). The service checks it again
    (``clinics.validation.check_text``); this says why in words a patient reads."""
    text = data.get(MESSAGE_FIELD, "").replace("\r\n", "\n").strip()  # browsers send CRLF
    if len(text) > PatientMessage.MAX_LENGTH:
        return text, _("Your message has %(count)s characters; at most %(max)s fit. Please shorten it.") % {
            "count": len(text),
            "max": PatientMessage.MAX_LENGTH,
        }
    if control_character(text, multiline=True):
        return text, _(
            "Your message contains an invisible character that cannot be saved. Please remove it "
            "or type the message again."
        )
    return text, ""
