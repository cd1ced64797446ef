"""Patient levels: one row per patient and scale, the long-run level and what the flags found."""

from __future__ import annotations

from typing import Any

import pandas as pd

import monitoring.exports.columns as cols
from clinics.models import Clinic, Episode
from monitoring.analytics import columns as c
from monitoring.exports.base import CSV, PDF, XLSX, Exporter, ExportFilters
from monitoring.exports.columns import Column, coded
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
        *cols.WHO,
        cols.SCALE,
        Column(c.N, "How many answered sessions the level rests on (up to the period's end).", cols.COUNT),
        Column(c.FIRST_SESSION, "The first answered session.", cols.SESSION_NUMBER),
        Column(c.LAST_SESSION, "The last answered session up to the period's end.", cols.SESSION_NUMBER),
        cols.LEVEL,
        Column(
            c.LEVEL_EB,
            "The long-run level shrunk towards the clinic mean (empirical Bayes): "
            "reliability x level + (1 - reliability) x clinic mean, with the clinic's estimated "
            "reference values (methods.md section 2). Steadier than level after few sessions.",
            cols.POINTS,
        ),
        Column(
            c.RELIABILITY,
            "The weight of the patient's own mean in level_eb, tau2 / (tau2 + sigma2 / n): near 0 "
            "the clinic mean dominates, near 1 the patient's own.",
            cols.SHARE,
        ),
        Column(
            c.PROVISIONAL,
            "true while reliability is below 0.80: the level rests on too few sessions to be read "
            "as the patient's own.",
            cols.BOOLEAN,
        ),
        Column(
            c.WITHIN_SD,
            "The SD of the patient's scores on the scale around their level: how much they vary "
            "from session to session.",
            cols.POINT_DIFFERENCE,
        ),
        Column(
            c.SLOPE,
            "The straight-line trend of the scores over sessions (ordinary least squares); empty "
            "below 4 sessions.",
            "points per session",
        ),
        Column(c.CEILING, "true when every score on the scale is the maximum, 5.", cols.BOOLEAN),
        Column(c.LAST_SCORE, "The score at the last answered session.", cols.POINTS),
        Column(c.N_RUPTURES, "Ruptures found on the scale (methods.md 4.2).", cols.COUNT),
        Column(c.N_REPAIRS, "Ruptures that were repaired (4.3).", cols.COUNT),
        Column(c.N_UNREPAIRED, "Ruptures that stayed unrepaired past their window (4.3).", cols.COUNT),
        Column(c.N_DECLINES, "Declining trends found (4.4).", cols.COUNT),
        Column(
            c.OPEN_RUPTURE,
            "true when the latest rupture is still open: neither repaired nor yet unrepaired.",
            cols.BOOLEAN,
        ),
        Column(
            "pattern",
            "The patient's pattern on the total scale (methods.md section 5), repeated on each scale "
            "row: a prompt for reflection, not a flag.",
            cols.CODE,
            coded((code, label or "no pattern") for code, label in c.PATTERN_LABELS.items()),
        ),
        Column("pattern_label", "The pattern in words, as the patient page shows it (empty: none)."),
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
        return join_info(levels, period.info, self.column_names(), pseudonymise=filters.pseudonymise)

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
            "table": pdf_table(total[wanted], headers=PDF_HEADERS),
            "note": "Total alliance scale; every scale is in the CSV and Excel files.",
            "landscape": True,
        }


#: The PDF's column headers, in words (the files keep the column names of docs/data-dictionary.md).
PDF_HEADERS = {
    c.N: "Sessions",
    c.LEVEL: "Long-run level",
    c.LEVEL_EB: "Level, shrunk to clinic (EB)",
    c.PROVISIONAL: "Provisional",
    c.N_RUPTURES: "Ruptures",
    c.N_REPAIRS: "Repairs",
    c.N_UNREPAIRED: "Unrepaired",
    c.N_DECLINES: "Declines",
    "pattern_label": "Pattern",
}
