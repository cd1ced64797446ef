"""Plain fields that refuse what a lenient parser would coerce, and the shared query helpers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clinics.validation import NoControlCharacters, validate_plausible_date
from monitoring.analytics import columns as c
from monitoring.instruments.measures import outcome_instruments

LANGUAGES = [code for code, _ in settings.LANGUAGES]
SCALES = list(c.SCALES)

# --- Strict fields -------------------------------------------------------------------------------


class _StrictString:
    """Accepts JSON strings only (DRF's CharField also takes numbers)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_StrictString, serializers.CharField):
    """A JSON string without control characters (DRF's CharField refuses only NUL and lone
    surrogates); ``multiline=True`` allows line breaks and tabs (notes)."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(NoControlCharacters(multiline=multiline))


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictUUIDField(_StrictString, serializers.UUIDField):
    pass


class StrictChoiceField(_StrictString, serializers.ChoiceField):
    default_error_messages = {"invalid": "Choose one of the listed values."}


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only: not ``"5"``, not ``5.0``, not ``true``."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean: exactly ``true`` or ``false`` (DRF's also takes yes, on, 1...)."""

    def to_internal_value(self, data: Any) -> bool:
        if data not in ("true", "false"):
            self.fail("invalid")
        return data == "true"


class PlausibleDateField(serializers.DateField):
    """A date a clinic can mean: from 1900 to two years ahead (clinics.validation). Year 1 and
    9999 are dates to JSON, but no session or episode ever had them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(validate_plausible_date)


class PlausibleDateTimeField(serializers.DateTimeField):
    """A moment within the same range, checked before the time zone is applied: in year 1 or
    9999, converting to UTC overflows (a 500 on SQLite, before the bound)."""

    def enforce_timezone(self, value: Any) -> Any:
        validate_plausible_date(value.date())
        return super().enforce_timezone(value)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[-a-zA-Z0-9_]+$",
        "maxLength": 50,
        "example": "phq9",
    }
)
class MeasureField(StrictCharField):
    """Which questionnaire: "alliance", or the code of a loaded symptom measure ("phq9", "gad7",
    or one a clinic loaded). Checked against the instruments loaded when used, not when the module
    loads, so a measure loaded later is accepted without a restart and the schema stays static."""

    default_error_messages = {"unknown": "Choose one of: {known}."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        if value == "alliance":
            return value
        known = ["alliance", *outcome_instruments()]
        if value not in known:
            self.fail("unknown", known=", ".join(known))
        return value


MEASURE_HELP = (
    '"alliance" (the default), or a symptom measure\'s code: "phq9", "gad7", or one the clinic '
    "loaded (GET /api/v1/instruments/)."
)


def _date_range(attrs: dict[str, Any], start: str, end: str) -> dict[str, Any]:
    if attrs.get(start) and attrs.get(end) and attrs[start] > attrs[end]:
        raise serializers.ValidationError({end: ["Must not be before " + start + "."]})
    return attrs


# --- Shared pieces -------------------------------------------------------------------------------
