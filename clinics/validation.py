"""The bounds of every input, in one place: text that fits its column and holds no control
characters, dates a clinic can mean, session numbers an episode can reach.

Each rule is a ``*_problem`` function (None, or the reason in words) so that every caller can
put the reason where its reader looks: a form field (through the Django validators below, which
the models and forms use), an API field (the serializers use the same validators), a line and
column of an import file, or an ``ApplicationError`` from a service (:func:`check_fields` runs
the model's own field validation, :func:`check_date`), the backstop for any caller that skipped
the others. Nothing out of range
reaches the database, where PostgreSQL would answer with a traceback (a value too long, a NUL
byte, an integer out of range) or store a date in year 1.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils.deconstruct import deconstructible

from clinics.errors import ApplicationError

#: The earliest date a session or episode of care can have.
MIN_DATE = date(1900, 1, 1)
#: How far ahead a session or episode date may be: appointments are booked months ahead, not
#: years; a later date is a typing error (2062 for 2026) that would sort above every real one.
YEARS_AHEAD = 2
#: The highest session number: weekly sessions for nearly two hundred years. The column holds
#: 2,147,483,647; anything past this bound is a typing error or a record number in the wrong column.
MAX_SESSION_NUMBER = 9999

# A clinic's numeric settings (Clinic, its settings form, and database constraints, since link
# expiry and reminders are computed from them: out of range, every link of the clinic fails). A
# link lives at most 30 days and its one reminder comes within them; data is kept 1 to 50 years
# after discharge (the longest statutory periods for health records are 30); staff are signed
# out after 5 minutes to 12 hours idle (a session lasts 12 hours at most anyway).
MAX_LINK_EXPIRY_HOURS = 30 * 24
MAX_RETENTION_YEARS = 50
MIN_IDLE_TIMEOUT_MINUTES = 5
MAX_IDLE_TIMEOUT_MINUTES = 12 * 60

#: Characters allowed in multi-line text (notes) that are otherwise control characters.
LINE_BREAKS = frozenset("\n\r\t")


def latest_date(today: date | None = None) -> date:
    """The latest plausible session or episode date: ``YEARS_AHEAD`` years from today."""
    today = today or date.today()
    try:
        return today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + YEARS_AHEAD, day=28)


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that nobody types (NUL, escape, bidirectional overrides,
    line separators, ...), as ``U+001B``; None if there is none. Line breaks and tabs are allowed
    in multi-line text."""
    for char in text:
        if multiline and char in LINE_BREAKS:
            continue
        # Cc: C0/C1 controls (NUL, ESC, DEL, ...); Cf: format characters (bidirectional
        # overrides that make "evil.exe" read "exe.live"); Zl/Zp: line and paragraph separators;
        # Cs/Co/Cn: surrogates, private use, unassigned.
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"} and char != "\u200d":
            return f"U+{ord(char):04X}"
    return None


def text_problem(text: str, *, max_length: int | None = None, multiline: bool = False) -> str | None:
    """Why ``text`` cannot be stored, or None: too long for its column, or a control character."""
    if max_length is not None and len(text) > max_length:
        return f"{len(text)} characters; at most {max_length} fit."
    found = control_character(text, multiline=multiline)
    if found:
        return f"contains an invisible control character ({found}); remove it."
    return None


def date_problem(value: date, *, today: date | None = None) -> str | None:
    """Why ``value`` is no date a session or episode can have, or None."""
    latest = latest_date(today)
    if not MIN_DATE <= value <= latest:
        return (
            f"{value.isoformat()} is not a plausible date "
            f"(from {MIN_DATE.isoformat()} to {latest.isoformat()})."
        )
    return None


def session_number_problem(value: int) -> str | None:
    if not 1 <= value <= MAX_SESSION_NUMBER:
        return f"'{value}' is not a session number (1 to {MAX_SESSION_NUMBER})."
    return None


# --- For services: the backstop ------------------------------------------------------------------


def check_fields(instance: Model, *names: str) -> None:
    """Run the model's own validation (length, control characters, ranges, dates) on the fields
    ``names`` of ``instance``; ``ApplicationError`` naming each bad field, before any write."""
    fields = {f.name: f for f in instance._meta.fields}
    try:
        instance.clean_fields(exclude=[name for name in fields if name not in names])
    except ValidationError as error:
        problems = [
            f"{str(fields[name].verbose_name).capitalize()}: {message}"
            for name, messages in error.message_dict.items()
            for message in messages
        ]
        raise ApplicationError(" ".join(problems), problems=problems, code="invalid") from None


def check_text(value: str, *, what: str, max_length: int | None, multiline: bool = False) -> None:
    problem = text_problem(value, max_length=max_length, multiline=multiline)
    if problem:
        raise ApplicationError(f"{what}: {problem}", code="invalid")


def check_date(value: date, *, what: str = "The date") -> None:
    problem = date_problem(value)
    if problem:
        raise ApplicationError(f"{what}: {problem}", code="invalid")


# --- Django validators: models, forms and serializers --------------------------------------------


@deconstructible
class NoControlCharacters:
    """Refuses text with a control character (see :func:`control_character`)."""

    message = "This contains an invisible control character (%(char)s); remove it."
    code = "control_character"

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: Any) -> None:
        found = control_character(str(value), multiline=self.multiline)
        if found:
            raise ValidationError(self.message, code=self.code, params={"char": found})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharacters) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash((type(self), self.multiline))


def validate_plausible_date(value: date) -> None:
    """Refuses a session or episode date outside ``MIN_DATE`` to ``latest_date()``."""
    problem = date_problem(value)
    if problem:
        raise ValidationError(problem, code="implausible_date")


no_control_characters = NoControlCharacters()
