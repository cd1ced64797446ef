"""Patient levels: one row per patient and scale, the long-run level and what the flags found."""

from __future__ import annotations

from typing import Any

import pandas as pd

from clinics.models import Clinic, Episode
from monitoring.analytics import columns as c
from monitoring.exports.base import CSV, PDF, XLSX, Exporter, ExportFilters
from monitoring.exports.queries import analysis_for_export, in_period, join_info, with_dates
from monitoring.exports.tables import pdf_table


class PatientLevels(Exporter):
    identifier = "patient_levels"
    verbose_name = "Patient levels"
    description = (
        "One row per patient and scale: the long-run level (person mean and its shrunken estimate), "
        "how reliable it is, trend, ceiling, counts of flags, and the pattern label."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "scale",
        c.N,
        c.FIRST_SESSION,
        c.LAST_SESSION,
        c.LEVEL,
        c.LEVEL_EB,
        c.RELIABILITY,
        c.PROVISIONAL,
        c.WITHIN_SD,
        c.SLOPE,
        c.CEILING,
        c.LAST_SCORE,
        c.N_RUPTURES,
        c.N_REPAIRS,
        c.N_UNREPAIRED,
        c.N_DECLINES,
        c.OPEN_RUPTURE,
        "pattern",
        "pattern_label",
    )

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        if period.analysis is None:
            return self.empty(filters=filters)
        analysis = period.analysis
        sessions = with_dates(analysis.sessions[analysis.sessions[c.SCALE] == c.TOTAL], period.dates)
        episodes_in_period = set(sessions.loc[in_period(sessions["date"], filters), "episode"])
        levels = analysis.levels.assign(episode=analysis.levels[c.PATIENT].astype("int64"))
        levels = levels[levels["episode"].isin(episodes_in_period)]
        patterns = analysis.patterns.assign(episode=analysis.patterns[c.PATIENT].astype("int64"))
        patterns = patterns.set_index("episode")[[c.PATTERN, c.LABEL]].rename(
            columns={c.LABEL: "pattern_label"}
        )
        levels = levels.drop(columns=[c.PATIENT]).join(patterns, on="episode")
        levels = levels.sort_values(["episode", "scale"], kind="stable")
        return join_info(levels, period.info, self.columns, pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        total = frame[frame["scale"] == c.TOTAL]
        if "treatment" in total.columns:
            total = total.assign(treatment=total["treatment"].map(lambda t: Episode.Treatment(t).label))
        wanted = [
            n
            for n in (
                "patient",
                "therapist",
                "treatment",
                c.N,
                c.LEVEL,
                c.LEVEL_EB,
                c.PROVISIONAL,
                c.N_RUPTURES,
                c.N_REPAIRS,
                c.N_UNREPAIRED,
                c.N_DECLINES,
                "pattern_label",
            )
            if n in total.columns
        ]
        return {
            "table": pdf_table(total[wanted]),
            "note": "Total alliance scale; every scale is in the CSV and Excel files.",
            "landscape": True,
        }
