"""Clinic summary: one row per scale for the period, and form completion; the PDF is the clinic
report, with the symptom outcome rates and the clinic's alliance-outcome association."""

from __future__ import annotations

import html
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q

import monitoring.exports.columns as cols
from clinics.models import Clinic, Episode, Session
from monitoring.analytics import columns as c
from monitoring.charts import ACCENT, AXIS, EARLY_BAR, MUTED
from monitoring.clinic_admin.report import SMALL_NUMBERS, ReportFilters, clinic_report
from monitoring.exports.base import CSV, DECIMALS, PDF, XLSX, Exporter, ExportFilters, pseudonym
from monitoring.exports.columns import Column
from monitoring.exports.pdf import FONT, _num, count_grid, histogram_svg
from monitoring.exports.queries import (
    PeriodAnalysis,
    analysis_for_export,
    episodes_for_export,
    in_period,
    sessions_in_period,
    with_dates,
)
from monitoring.exports.tables import percent
from monitoring.flags import wording
from monitoring.models import Invitation, Rater, Response
from monitoring.outcomes.selectors import (
    MIN_LINK_OBSERVATIONS,
    MIN_LINK_PATIENTS,
    MIN_RATE_EPISODES,
    OutcomeRates,
    clinic_alliance_links,
    clinic_outcome_rates,
    link_sentence,
)

#: The outcome rates' groups, in the order the report shows them (as the admin report page).
OUTCOME_GROUPS = (
    ("all", "All finished episodes"),
    ("period", "By quarter of ending"),
    ("therapist", "By therapist"),
    ("treatment", "By treatment"),
)


class ClinicSummary(Exporter):
    identifier = "clinic_summary"
    verbose_name = "Clinic summary"
    description = (
        "One row per scale: patients, sessions, ruptures, repairs, unrepaired ruptures, declines, "
        "sudden changes, rupture and repair rates, the share of ceiling raters, and form "
        "completion (forms sent, completed, completion rate). The PDF is the clinic report."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        cols.SCALE,
        Column("n_patients", "Patients (episodes of care) with a scored session in the period.", cols.COUNT),
        Column("n_sessions", "Scored sessions in the period.", cols.COUNT),
        Column("n_ruptures", "Ruptures raised at sessions in the period.", cols.COUNT),
        Column("n_repairs", "Repairs in the period.", cols.COUNT),
        Column("n_unrepaired", "Ruptures that became unrepaired in the period.", cols.COUNT),
        Column("n_declines", "Declining trends raised in the period.", cols.COUNT),
        Column("n_sudden_gains", "Sudden gains in the period.", cols.COUNT),
        Column("n_sudden_losses", "Sudden losses in the period.", cols.COUNT),
        Column(
            "share_patients_with_rupture",
            "Patients with at least one rupture in the period, out of n_patients (empty: no patients).",
            cols.SHARE,
        ),
        Column(
            "share_ruptures_repaired",
            "Repairs out of ruptures resolved either way (repairs + unrepaired) in the period "
            "(empty: none resolved).",
            cols.SHARE,
        ),
        Column(
            "ceiling_rater_share",
            "Patients whose every score on the scale is the maximum, 5, out of n_patients (methods.md 4.6).",
            cols.SHARE,
        ),
        Column(
            "sessions_held",
            "Sessions marked held in the period (the whole clinic with the filters; the same on every row).",
            cols.COUNT,
        ),
        Column(
            "forms_sent",
            "Held sessions a form link was made for (a link sent again counts once).",
            cols.COUNT,
        ),
        Column(
            "forms_completed",
            "Held sessions with the patient's alliance form in, by any route (link, tablet, staff entry, import).",
            cols.COUNT,
        ),
        Column("completion_rate", "forms_completed out of sessions_held.", cols.SHARE),
        Column(
            "link_completion_rate",
            "Sessions sent a link whose form came in, out of forms_sent.",
            cols.SHARE,
        ),
    )
    pdf_template = "exports/pdf/clinic_report.html"

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        summary = period_summary(period=period, filters=filters)
        completion = completion_figures(clinic=clinic, filters=filters)
        for name, value in completion.items():
            summary[name] = value
        floats = [n for n in summary.columns if pd.api.types.is_float_dtype(summary[n])]
        summary[floats] = summary[floats].round(DECIMALS)
        return summary[self.column_names()]

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        period = analysis_for_export(clinic=clinic, filters=filters)
        levels: list[float] = []
        if period.analysis is not None:
            # The patients of the period: those with a scored session in it.
            sessions = with_dates(period.analysis.sessions, period.dates)
            present = set(sessions.loc[in_period(sessions["date"], filters), "episode"])
            lv = period.analysis.levels
            lv = lv[(lv[c.SCALE] == c.TOTAL) & lv[c.PATIENT].astype("int64").isin(present)]
            levels = [float(v) for v in lv[c.LEVEL].dropna()]
        first = frame.iloc[0] if len(frame) else None
        rows = []
        for record in frame.to_dict("records"):
            rows.append(
                {
                    "scale": wording.SCALE_NAMES.get(str(record["scale"]), str(record["scale"])),
                    "n_patients": record["n_patients"],
                    "n_sessions": record["n_sessions"],
                    "n_ruptures": record["n_ruptures"],
                    "n_repairs": record["n_repairs"],
                    "n_unrepaired": record["n_unrepaired"],
                    "n_declines": record["n_declines"],
                    "sudden": f"{record['n_sudden_gains']} / {record['n_sudden_losses']}",
                    "rupture_rate": percent(record["share_patients_with_rupture"]),
                    "repair_rate": percent(record["share_ruptures_repaired"]),
                    "ceiling": percent(record["ceiling_rater_share"]),
                }
            )
        return {
            "scales": rows,
            "completion": None
            if first is None
            else {
                "sessions_held": int(first["sessions_held"]),
                "forms_sent": int(first["forms_sent"]),
                "forms_completed": int(first["forms_completed"]),
                "completion_rate": percent(first["completion_rate"]),
                "link_completion_rate": percent(first["link_completion_rate"]),
            },
            "histogram_svg": histogram_svg(
                values=levels, title="Patients' long-run total alliance level", x_label="Long-run level (1-5)"
            ),
            "n_levels": len(levels),
            **therapist_context(clinic=clinic, filters=filters),
            **outcomes_context(clinic=clinic, filters=filters),
        }


def therapist_context(*, clinic: Clinic, filters: ExportFilters) -> dict[str, Any]:
    """The web clinic report's by-therapist table and forms completed per month, from its own
    selector (:func:`clinic_report`) under the export's period and therapist and treatment
    filters. Pseudonymised, therapists are their keyed codes."""
    report = clinic_report(
        clinic=clinic,
        filters=ReportFilters(
            start=filters.start or date.min,
            end=filters.end or date.max,
            therapist_id=filters.therapist_id,
            treatment=filters.treatment,
        ),
    )
    therapists = []
    for t in report.therapists:
        if filters.pseudonymise:
            name = pseudonym(clinic=clinic, kind="therapist", value=t.therapist.pk, key=filters.pseudonym_key)
        else:
            name = t.therapist.get_full_name() or t.therapist.email
        therapists.append(
            {
                "name": name,
                "small": t.small,
                "patients": t.patients,
                "held": t.held,
                "completion": f"{round(t.completed / t.held * 100)}%" if t.held else "\u2013",
                "patients_with_rupture": t.patients_with_rupture,
                "repaired": t.repaired,
                "unrepaired": t.unrepaired,
                "declines": t.declines,
            }
        )
    months = [
        {
            "month": m,
            "held": h,
            "completed": d,
            "completion": f"{round(d / h * 100)}%" if h else "\u2013",
        }
        for m, h, d in zip(report.months, report.held_by_month, report.completed_by_month, strict=True)
    ]
    return {
        "therapists": therapists,
        "small_numbers": SMALL_NUMBERS,
        "months": months,
        "months_svg": months_svg(months) if months else "",
    }


def months_svg(months: list[dict[str, Any]], *, width: int = 680, height: int = 200) -> str:
    """Sessions held (pale bar) and patient forms completed (dark, narrower bar) per month, as a
    static SVG with a text alternative in its title."""
    left, right, top, bottom = 34.0, 14.0, 10.0, 36.0
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((m["held"] for m in months), default=0) or 1
    held, done = sum(m["held"] for m in months), sum(m["completed"] for m in months)
    label = html.escape(
        f"Forms completed by month: {done} of {held} held sessions; "
        + "; ".join(f"{m['month']}: {m['completed']} of {m['held']}" for m in months)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" font-family="{FONT}" font-size="10"><title>{label}</title>'
    ]
    parts.extend(count_grid(peak=peak, left=left, right=width - right, top=top, plot_h=plot_h))
    slot = plot_w / len(months)
    bar = min(slot * 0.8, 60.0)
    for i, m in enumerate(months):
        x = left + i * slot + (slot - bar) / 2
        for value, w, fill in ((m["held"], bar, EARLY_BAR), (m["completed"], bar / 2, ACCENT)):
            if value:
                h = value * plot_h / peak
                parts.append(
                    f'<rect x="{_num(x + (bar - w) / 2)}" y="{_num(top + plot_h - h)}" width="{_num(w)}" '
                    f'height="{_num(h)}" fill="{fill}"/>'
                )
        if len(months) <= 12 or i % 2 == 0:
            parts.append(
                f'<text x="{_num(left + i * slot + slot / 2)}" y="{_num(top + plot_h + 14)}" '
                f'text-anchor="middle" fill="{MUTED}">{html.escape(m["month"])}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{_num(top + plot_h)}" x2="{width - right}" y2="{_num(top + plot_h)}" stroke="{AXIS}"/>'
    )
    parts.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h + 28)}" text-anchor="middle" fill="{MUTED}">'
        "Sessions held (pale) and forms completed (dark) per month</text></svg>"
    )
    return "".join(parts)


def outcomes_context(*, clinic: Clinic, filters: ExportFilters) -> dict[str, Any]:
    """The clinic report's symptom outcomes: NHS Talking Therapies rates of the episodes that ended
    in the period (with the therapist and treatment filters), overall and by quarter of ending,
    therapist and treatment, each group under ``MIN_RATE_EPISODES`` marked small; and the
    within-patient alliance-PHQ-9 sentences (all the clinic's episodes, with their small-numbers
    guard). Pseudonymised, therapists are their keyed codes. Empty for a clinic that asks no
    symptom measures and has no finished episode with them."""
    rates = clinic_outcome_rates(
        clinic=clinic,
        start=filters.start,
        end=filters.end,
        therapist_id=filters.therapist_id,
        treatment=filters.treatment,
    )
    any_rates = any(r.episodes for r in rates.get("all", []))
    if not clinic.outcome_measures and not any_rates:
        return {"outcomes": None}
    names = _therapist_names(clinic, key=filters.pseudonym_key) if filters.pseudonymise else {}
    groups = []
    for key, label in OUTCOME_GROUPS:
        rows = [
            _rate_row(r, names.get(r.group, r.group) if key == "therapist" else r.group)
            for r in rates.get(key, [])
        ]
        if rows:
            groups.append({"label": label, "rows": rows})
    links = (
        [link_sentence(link, "PHQ-9") for link in clinic_alliance_links(clinic=clinic)]
        if "phq9" in clinic.outcome_measures
        else []
    )
    return {
        "outcomes": {
            "groups": groups if any_rates else [],
            "small": MIN_RATE_EPISODES,
            "links": links,
            "min_patients": MIN_LINK_PATIENTS,
            "min_pairs": MIN_LINK_OBSERVATIONS,
        }
    }


def _rate_row(rates: OutcomeRates, group: str) -> dict[str, Any]:
    return {
        "group": group,
        "episodes": rates.episodes,
        "cases": rates.cases,
        "recovery": percent(rates.recovery),
        "reliable_improvement": percent(rates.reliable_improvement),
        "reliable_deterioration": percent(rates.reliable_deterioration),
        "reliable_recovery": percent(rates.reliable_recovery),
        "small": rates.small,
    }


def _therapist_names(clinic: Clinic, *, key: str) -> dict[str, str]:
    """Each therapist's name as the outcome rates group them, to their keyed code (research
    exports name nobody)."""
    therapists = User.objects.filter(
        pk__in=Episode.objects.filter(patient__clinic=clinic).values("therapist_id")
    )
    return {
        t.get_full_name() or t.username: pseudonym(clinic=clinic, kind="therapist", value=t.pk, key=key)
        for t in therapists
    }


def period_summary(*, period: PeriodAnalysis, filters: ExportFilters) -> pd.DataFrame:
    """``analysis.summary``'s figures for the sessions of the period, one row per scale.

    Events and sessions are counted where their session date falls in the period; each
    patient's level (and ceiling) is the one at the period's end. Without a period this equals
    ``analysis.summary`` (a test checks it), with ``ceiling_share`` named ``ceiling_rater_share``.
    """
    scales = list(c.SCALES)
    if period.analysis is None:
        out = pd.DataFrame({"scale": scales})
        for name in (
            "n_patients",
            "n_sessions",
            "n_ruptures",
            "n_repairs",
            "n_unrepaired",
            "n_declines",
            "n_sudden_gains",
            "n_sudden_losses",
        ):
            out[name] = 0
        for name in ("share_patients_with_rupture", "share_ruptures_repaired", "ceiling_rater_share"):
            out[name] = np.nan
        return out
    a = period.analysis
    sessions = with_dates(a.sessions[a.sessions[c.SCORE].notna()], period.dates)
    sessions = sessions[in_period(sessions["date"], filters)]
    events = with_dates(a.events, period.dates)
    events = events[in_period(events["date"], filters)]
    levels = a.levels.assign(episode=a.levels[c.PATIENT].astype("int64"))
    rows = []
    for scale in scales:
        s = sessions[sessions["scale"].astype(str) == scale]
        e = events[events["scale"].astype(str) == scale]
        patients = set(s["episode"])
        lv = levels[(levels[c.SCALE].astype(str) == scale) & levels["episode"].isin(patients)]
        kinds = e["kind"].astype(str).value_counts()
        n_patients = len(patients)
        ruptured = e.loc[e["kind"].astype(str) == c.RUPTURE, "episode"].nunique()
        repairs, unrepaired = int(kinds.get(c.REPAIR, 0)), int(kinds.get(c.UNREPAIRED, 0))
        rows.append(
            {
                "scale": scale,
                "n_patients": n_patients,
                "n_sessions": len(s),
                "n_ruptures": int(kinds.get(c.RUPTURE, 0)),
                "n_repairs": repairs,
                "n_unrepaired": unrepaired,
                "n_declines": int(kinds.get(c.DECLINE, 0)),
                "n_sudden_gains": int(kinds.get(c.SUDDEN_GAIN, 0)),
                "n_sudden_losses": int(kinds.get(c.SUDDEN_LOSS, 0)),
                "share_patients_with_rupture": ruptured / n_patients if n_patients else np.nan,
                "share_ruptures_repaired": repairs / (repairs + unrepaired)
                if repairs + unrepaired
                else np.nan,
                "ceiling_rater_share": float(lv[c.CEILING].mean()) if len(lv) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def completion_figures(*, clinic: Clinic, filters: ExportFilters) -> dict[str, float | int]:
    """Form completion for the period: held sessions, forms sent (sessions with a form link; a
    link re-issued for the same session counts once), patient forms completed (whatever the
    route: link, tablet, staff entry or import), and two rates: completed per held session, and
    completed per session a link was sent for."""
    episodes = episodes_for_export(clinic=clinic, filters=filters)
    held = sessions_in_period(
        Session.objects.filter(episode__in=episodes.values("pk"), status=Session.Status.HELD), filters
    )
    answered = Exists(
        Response.objects.filter(session=OuterRef("pk"), rater=Rater.PATIENT, measure="alliance")
    )
    invited = Exists(Invitation.objects.filter(session=OuterRef("pk")))
    counts = held.aggregate(
        sessions_held=Count("pk"),
        forms_sent=Count("pk", filter=Q(invited)),
        forms_completed=Count("pk", filter=Q(answered)),
        link_completed=Count("pk", filter=Q(invited) & Q(answered)),
    )
    sent, completed = counts["forms_sent"], counts["forms_completed"]
    return {
        "sessions_held": counts["sessions_held"],
        "forms_sent": sent,
        "forms_completed": completed,
        "completion_rate": completed / counts["sessions_held"] if counts["sessions_held"] else np.nan,
        "link_completion_rate": counts["link_completed"] / sent if sent else np.nan,
    }
