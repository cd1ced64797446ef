"""Outcome measures (PHQ-9, GAD-7, or one a clinic loads) as the analytics sees them, and which
ones a clinic asks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from django.db.models import Count, Sum

from clinics.models import Clinic
from monitoring.analytics.outcomes import MeasureSpec
from monitoring.models import Answer, Instrument, Rater

#: The bundled measures in the order forms and pages show them (depression, then anxiety); a
#: measure a clinic loads comes after them.
BUNDLED = ("phq9", "gad7")


def measure_spec(instrument: Instrument) -> MeasureSpec:
    """The loaded measure's scoring as the analytics' :class:`MeasureSpec` (the instrument's JSON
    is the source; ``monitoring.analytics.MEASURES`` holds the same values for use without a
    database, and a test keeps the two equal)."""
    scoring = instrument.scoring
    risk = scoring.get("risk_items") or []
    return MeasureSpec(
        code=instrument.code,
        name=instrument.translation("en").name,
        items=len(instrument.items.all()),
        item_min=instrument.scale_min,
        item_max=instrument.scale_max,
        bands=tuple((int(start), str(label)) for start, label in scoring["bands"]),
        cutoff=scoring["cutoff"],
        reliable_change=scoring["reliable_change"],
        max_missing=int(scoring.get("max_missing", 0)),
        loinc_panel=scoring.get("loinc", {}).get("panel", ""),
        loinc_total=scoring.get("loinc", {}).get("total", ""),
        higher_is_worse=bool(scoring.get("higher_is_worse", True)),
        risk_item=int(risk[0]) if risk else None,
    )


def outcome_instruments(codes: Iterable[str] | None = None) -> dict[str, Instrument]:
    """The newest loaded version of each outcome measure (of ``codes``, in their order)."""
    found: dict[str, Instrument] = {}
    rows = Instrument.objects.filter(kind=Instrument.Kind.OUTCOME, rater=Rater.PATIENT).prefetch_related(
        "items", "translations"
    )
    wanted = list(codes) if codes is not None else None
    if wanted is not None:
        rows = rows.filter(code__in=wanted)
    for instrument in rows.order_by("code", "-version"):
        found.setdefault(instrument.code, instrument)
    order = (
        wanted
        if wanted is not None
        else sorted(
            found, key=lambda code: (code not in BUNDLED, BUNDLED.index(code) if code in BUNDLED else 0, code)
        )
    )
    return {code: found[code] for code in order if code in found}


def clinic_measures(clinic: Clinic) -> dict[str, Instrument]:
    """The symptom measures this clinic asks with each session, in its order."""
    return outcome_instruments(clinic.outcome_measures)


def specs(instruments: Mapping[str, Instrument] | Sequence[Instrument]) -> dict[str, MeasureSpec]:
    values = instruments.values() if isinstance(instruments, Mapping) else instruments
    return {i.code: measure_spec(i) for i in values}


def risk_answers(instrument: Instrument, answers: Mapping[int, int]) -> list[tuple[int, int]]:
    """(item, value) of every risk item answered above its scale's lowest value."""
    return [
        (number, answers[number])
        for number in instrument.scoring.get("risk_items") or []
        if answers.get(number) is not None and answers[number] > instrument.scale_min
    ]


def outcome_scores(*, episode_ids: Iterable[int], measures: Iterable[str] | None = None) -> pd.DataFrame:
    """Outcome totals, one row per response: ``patient`` (the episode id), ``session``
    (number), ``measure`` (code) and ``score`` (NaN when too many items are unanswered; the
    measure's own missing-item rule, methods.md section 6.1). Sorted by patient, measure, session.
    One query of per-response sums and counts; no Python loop over answers."""
    rows = (
        Answer.objects.filter(
            response__session__episode_id__in=list(episode_ids), response__rater=Rater.PATIENT
        )
        .exclude(response__measure="alliance")
        .values(
            "response_id", "response__session__episode_id", "response__session__number", "response__measure"
        )
        .annotate(total=Sum("value"), answered=Count("id"))
        .order_by()
    )
    if measures is not None:
        rows = rows.filter(response__measure__in=list(measures))
    frame = pd.DataFrame.from_records(
        list(
            rows.values_list(
                "response__session__episode_id",
                "response__session__number",
                "response__measure",
                "total",
                "answered",
            )
        ),
        columns=["patient", "session", "measure", "total", "answered"],
    )
    if frame.empty:
        return pd.DataFrame(columns=["patient", "session", "measure", "score"]).astype(
            {"patient": "int64", "session": "int64", "score": "float64"}
        )
    found = specs(outcome_instruments(frame["measure"].unique()))
    n_items = frame["measure"].map({code: s.items for code, s in found.items()})
    allowed = frame["measure"].map({code: s.max_missing for code, s in found.items()})
    total = frame["total"].astype(float)
    answered = frame["answered"].astype(float)
    prorated = np.rint(total / answered * n_items)
    frame["score"] = np.where(
        answered == n_items, total, np.where(n_items - answered <= allowed, prorated, np.nan)
    )
    return frame[["patient", "session", "measure", "score"]].sort_values(
        ["patient", "measure", "session"], ignore_index=True
    )
