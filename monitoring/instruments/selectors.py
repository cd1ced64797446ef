"""Which questionnaire a clinic uses."""

from __future__ import annotations

from clinics.errors import ApplicationError
from clinics.models import Clinic
from monitoring.models import (
    Instrument,
)


def instrument_for_clinic(*, clinic: Clinic, rater: str = "patient") -> Instrument:
    """The newest version of the clinic's chosen instrument for ``rater``."""
    code = clinic.instrument_code if rater == "patient" else f"{clinic.instrument_code}-therapist"
    instrument = (
        Instrument.objects.filter(code=code, rater=rater).order_by("-version").first()
        or Instrument.objects.filter(rater=rater).order_by("code", "-version").first()
    )
    if instrument is None:
        raise ApplicationError(f"No {rater}-rated instrument is loaded; run load_instrument.")
    return instrument
