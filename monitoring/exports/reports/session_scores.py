"""Session scores: one row per patient, session and scale, with the analysis behind each flag and
the session's symptom totals and severity bands."""

from __future__ import annotations

import pandas as pd

from clinics.models import Clinic
from monitoring.analytics import columns as c
from monitoring.exports.base import Exporter, ExportFilters
from monitoring.exports.queries import (
    analysis_for_export,
    in_period,
    join_info,
    symptom_columns,
    symptoms_by_session,
    with_dates,
)


class SessionScores(Exporter):
    identifier = "session_scores"
    verbose_name = "Session scores"
    description = (
        "One row per patient, session and scale: the score, the patient's long-run level, the "
        "session's deviation from it (state and z) and the baseline the flag rules compared with; "
        "then the session's symptom totals and severity bands (phq9, phq9_band, gad7, gad7_band; "
        "empty where not answered)."
    )
    columns = (
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "session",
        "date",
        "scale",
        c.T,
        c.SCORE,
        c.LEVEL,
        c.STATE,
        c.Z,
        c.BASELINE,
        c.N_BASELINE,
        c.S_USED,
        c.IN_RUPTURE,
    )

    def output_columns(self, *, pseudonymise: bool) -> list[str]:
        """The alliance columns, then two per symptom measure loaded (its total and band)."""
        return [*super().output_columns(pseudonymise=pseudonymise), *symptom_columns()]

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        if period.analysis is None:
            return self.empty(filters=filters)
        rows = with_dates(period.analysis.sessions, period.dates)
        rows = rows[in_period(rows["date"], filters)]
        rows = rows.sort_values(["episode", "session", "scale"], kind="stable")
        symptoms = symptoms_by_session(list(period.info.index))
        rows = rows.merge(symptoms, on=["episode", "session"], how="left")
        bands = [name for name in symptoms.columns if name.endswith("_band")]
        rows[bands] = rows[bands].fillna("")
        columns = [*self.columns, *(name for name in symptoms.columns if name not in ("episode", "session"))]
        return join_info(rows, period.info, columns, pseudonymise=filters.pseudonymise)
