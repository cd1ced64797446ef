"""The one-patient report: a patient's course, trajectory chart, symptom measures, safety alerts,
flags and session table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
from django.utils import timezone

import monitoring.exports.columns as cols
from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode
from monitoring import charts
from monitoring.analytics import columns as c
from monitoring.exports.base import CSV, PDF, XLSX, Exporter, ExportFilters
from monitoring.exports.columns import Column
from monitoring.exports.pdf import trajectory_svg
from monitoring.exports.queries import (
    analysis_for_export,
    episodes_for_export,
    in_period,
    join_info,
    person_name,
    sessions_in_period,
)
from monitoring.exports.tables import pdf_table
from monitoring.flags import events, wording
from monitoring.models import Flag, SafetyAlert
from monitoring.outcomes.selectors import MeasureCourse, outcome_status_for_episodes


class PatientReport(Exporter):
    identifier = "patient_report"
    verbose_name = "One-patient report"
    description = (
        "One patient's course: long-run level, trajectory chart, symptom measures (first and latest "
        "score, band, reliable change, not on track), safety alerts with their follow-up, flags "
        "with their explanations and acknowledgements, and the session table. Needs a patient; the "
        "files hold the session table."
    )
    formats = (PDF, CSV, XLSX)
    columns = (
        cols.PATIENT,
        cols.EXTERNAL_ID,
        cols.SESSION,
        cols.DATE_,
        *(
            Column(scale, f"The session's {label.lower()} score (see score).", cols.POINTS)
            for scale, label in c.SCALE_LABELS.items()
        ),
        Column(
            "z_total",
            "The total's z (see z): the session against the patient's own level and spread.",
            cols.SD_UNITS,
        ),
        Column(
            "flags",
            "The flags raised at the session, by their short names, separated by '; ' (empty: none).",
            "text: short flag names",
        ),
    )
    needs_patient = True
    pdf_template = "exports/pdf/patient_report.html"

    def _episode(self, *, clinic: Clinic, filters: ExportFilters) -> Episode:
        if not filters.patient_code:
            raise ApplicationError("Choose the patient for a one-patient report.")
        episodes = episodes_for_export(
            clinic=clinic,
            filters=ExportFilters(
                patient_code=filters.patient_code,
                therapist_id=filters.therapist_id,
                treatment=filters.treatment,
            ),
        )
        episode = episodes.select_related("patient__clinic", "therapist").order_by("-started_on").first()
        if episode is None:
            raise ApplicationError("This patient has no episode of care matching the filters.")
        return episode

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        episode = self._episode(clinic=clinic, filters=filters)
        one = ExportFilters(
            start=filters.start,
            end=filters.end,
            patient_code=filters.patient_code,
            pseudonymise=filters.pseudonymise,
            pseudonym_key=filters.pseudonym_key,
        )
        period = analysis_for_export(clinic=clinic, filters=one)
        if period.analysis is None:
            return self.empty(filters=filters)
        sessions = period.analysis.sessions
        sessions = sessions[sessions[c.PATIENT].astype("int64") == episode.pk]
        wide = sessions.pivot_table(
            index=c.SESSION, columns=c.SCALE, values=c.SCORE, observed=False, dropna=False
        )
        wide = wide.reindex(columns=list(c.SCALES))
        wide.columns = [str(name) for name in wide.columns]
        z = sessions[sessions[c.SCALE] == c.TOTAL].set_index(c.SESSION)[c.Z].rename("z_total")
        table = wide.join(z).reset_index()
        table["episode"] = episode.pk
        table = table.merge(period.dates, on=["episode", "session"], how="left")
        kinds: dict[int, list[str]] = {}
        for number, kind in (
            Flag.objects.filter(episode=episode).values_list("session__number", "kind").distinct()
        ):
            kinds.setdefault(number, []).append(wording.FLAGS[kind].short if kind in wording.FLAGS else kind)
        table["flags"] = (
            table[c.SESSION].map(lambda n: "; ".join(sorted(set(kinds.get(int(n), []))))).astype(str)
        )
        table = table[in_period(table["date"], filters)]
        return join_info(table, period.info, self.column_names(), pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        episode = self._episode(clinic=clinic, filters=filters)
        one = ExportFilters(
            end=filters.end,
            patient_code=filters.patient_code,
            pseudonymise=filters.pseudonymise,
            pseudonym_key=filters.pseudonym_key,
        )
        period = analysis_for_export(clinic=clinic, filters=one)
        info = period.info.loc[episode.pk]
        flag_filters = ExportFilters(start=filters.start, end=filters.end)
        stored = list(
            sessions_in_period(Flag.objects.filter(episode=episode), flag_filters, prefix="session__")
            .select_related("session", "acknowledged_by")
            .order_by("session__number", "scale", "kind")
        )
        level: dict[str, Any] | None = None
        chart_svg, chart_summary, pattern = "", "No answers yet.", None
        if period.analysis is not None:
            a = period.analysis
            mine = a.sessions[(a.sessions[c.PATIENT].astype("int64") == episode.pk)]
            lv = a.levels[a.levels[c.PATIENT].astype("int64") == episode.pk]
            ev = a.events[a.events[c.PATIENT].astype("int64") == episode.pk]
            dates = dict(
                period.dates.loc[period.dates["episode"] == episode.pk, ["session", "date"]].itertuples(
                    index=False
                )
            )
            chart_summary = charts.trajectory(
                sessions=mine,
                levels=lv,
                events=ev,
                session_dates=dates,
                low_alliance=pd.DataFrame(events.low_alliance_rows(stored)),
            ).summary
            total_level = lv[lv[c.SCALE] == c.TOTAL]
            total = mine[mine[c.SCALE] == c.TOTAL]
            if len(total_level):
                row = total_level.iloc[0]
                level = {
                    "level": f"{row[c.LEVEL]:.1f}",
                    "level_eb": f"{row[c.LEVEL_EB]:.1f}",
                    "provisional": bool(row[c.PROVISIONAL]),
                    "n": int(row[c.N]),
                }
            chart_svg = trajectory_svg(
                points=[(int(s), float(v)) for s, v in total[[c.SESSION, c.SCORE]].itertuples(index=False)],
                level=float(total_level.iloc[0][c.LEVEL]) if len(total_level) else None,
                events=[
                    (int(s), float(v), str(k))
                    for s, v, k in ev.loc[ev[c.SCALE] == c.TOTAL, [c.SESSION, c.SCORE, c.KIND]].itertuples(
                        index=False
                    )
                ],
                title="Total alliance per session",
            )
            pat = a.patterns[a.patterns[c.PATIENT].astype("int64") == episode.pk]
            if len(pat) and str(pat[c.PATTERN].iloc[0]) in wording.PATTERNS:
                words = wording.PATTERNS[str(pat[c.PATTERN].iloc[0])]
                pattern = {"title": words.title, "explanation": str(pat[c.EXPLANATION].iloc[0])}
        table = frame.drop(columns=[n for n in ("patient", "external_id") if n in frame.columns])
        return {
            "who": {
                "patient": info["patient"],
                "external_id": "" if filters.pseudonymise else info["external_id"],
                "therapist": info["therapist"],
                "treatment": Episode.Treatment(info["treatment"]).label,
                "episode_start": info["episode_start"],
                "episode_end": episode.ended_on,
            },
            "level": level,
            "pattern": pattern,
            "chart_svg": chart_svg,
            "chart_summary": chart_summary,
            "flags": event_entries(stored, pseudonymise=filters.pseudonymise),
            "table": pdf_table(table),
            **symptoms_context(episode=episode, filters=filters, dates=period.dates),
        }

    def filename(self, *, clinic: Clinic, filters: ExportFilters, fmt: str) -> str:
        name = super().filename(clinic=clinic, filters=filters, fmt=fmt)
        return name.replace("patient-report", f"patient-report-{str(filters.patient_code)[:8]}")


def event_entries(flags: list[Flag], *, pseudonymise: bool) -> list[dict[str, Any]]:
    """The report's flags as events (``monitoring.flags.events``: a rupture and what followed it
    is one entry), oldest first, in words: the title, sessions, scales, the story's steps with
    their explanations, and whether the event is acknowledged (all of it, part of it, or not
    yet) with who, when and the note. Pseudonymised: who and the note are left out."""
    entries = []
    for event in reversed(events.flag_events(flags)):
        done = [f for f in event.flags if f.acknowledgement]
        latest = max(done, key=lambda f: f.acknowledged_at or f.created_at) if done else None
        by = latest.acknowledged_by if latest is not None else None
        first = min(event.steps, key=lambda s: s.session).head.session
        entries.append(
            {
                "kind": event.kind,
                "title": wording.FLAGS[event.kind].title,
                # A story from its rupture to its latest step; any other event at its session
                # (an alliance that stayed low says its run in its explanation).
                "sessions": f"{event.start} to {event.session}"
                if event.story and event.start != event.session
                else str(event.head.session.number),
                "date": first.date,
                "scales": ", ".join(wording.SCALE_NAMES.get(s, s) for s in event.scales),
                "story": event.told[:1].upper() + event.told[1:] if event.story else "",
                "steps": [
                    {
                        "words": step.words[:1].upper() + step.words[1:],
                        "title": wording.FLAGS[step.kind].title,
                        # Named where they differ from the event's.
                        "scales": ""
                        if event.scales_of(step.kind) == event.scales
                        else ", ".join(wording.SCALE_NAMES.get(s, s) for s in event.scales_of(step.kind)),
                        "explanation": step.head.explanation,
                    }
                    for step in event.steps
                ],
                "acknowledged": "all" if len(done) == len(event.flags) else "part" if done else "",
                "open_steps": ", ".join(
                    step.words for step in event.steps if not all(f.acknowledgement for f in step.flags)
                ),
                "acknowledgement_label": latest.get_acknowledgement_display() if latest is not None else "",
                "acknowledged_by": ""
                if pseudonymise or by is None
                else person_name(by.first_name, by.last_name, by.email),
                "acknowledged_at": timezone.localtime(latest.acknowledged_at)
                if latest is not None and latest.acknowledged_at
                else None,
                "acknowledged_note": "" if pseudonymise or latest is None else latest.acknowledged_note,
            }
        )
    return entries


def symptoms_context(*, episode: Episode, filters: ExportFilters, dates: pd.DataFrame) -> dict[str, Any]:
    """The symptoms section and the safety alerts of the one-patient report, as of the period's
    end (like the rest of the report): each measure's first and latest score, band, change,
    reliable change and whether it is on track, its scores per session, and every safety alert
    raised up to then with its follow-up. Pseudonymised: who followed up and the note are left
    out (the note is free text)."""
    mine = dates[dates["episode"] == episode.pk]
    date_of = {int(n): d for n, d in mine[["session", "date"]].itertuples(index=False)}
    last = max((n for n, d in date_of.items() if not filters.end or d <= filters.end), default=0)
    status = outcome_status_for_episodes(episodes=[episode]).get(episode.pk)
    courses = [_until(course, last) for course in (status.courses.values() if status else [])]
    courses = [course for course in courses if course.scores]
    measures = []
    for course in courses:
        expected = course.expected[-1] if course.expected else None
        measures.append(
            {
                "name": course.spec.name,
                "first": _points(course.first),
                "first_session": course.scores[0][0],
                "first_band": course.spec.band(course.scores[0][1]),
                "latest": _points(course.latest),
                "latest_session": course.latest_session,
                "band": course.band,
                "change": "" if course.change is None else f"{course.change:+.0f}",
                "reliable": {"improved": "reliably improved", "deteriorated": "reliably deteriorated"}.get(
                    course.reliable, "no reliable change" if course.change is not None else "one score only"
                ),
                "reliable_change": course.spec.reliable_change,
                "not_on_track": course.not_on_track,
                "expected": _points(expected[1]) if expected else "",
                "upper": _points(expected[2]) if expected else "",
                "curve_source": course.curve_source,
            }
        )
    sessions = sorted({n for course in courses for n, _ in course.scores})
    rows = []
    for number in sessions:
        cells = []
        for course in courses:
            score = dict(course.scores).get(number)
            cells.append("\u2013" if score is None else f"{score:.0f} ({course.spec.band(score)})")
        rows.append({"session": number, "date": date_of.get(number), "cells": cells})
    alerts = []
    for alert in (
        SafetyAlert.objects.filter(episode=episode, session__number__lte=last)
        .select_related("session", "followed_up_by")
        .order_by("raised_at", "pk")
    ):
        by = alert.followed_up_by
        alerts.append(
            {
                "session": alert.session.number,
                "date": alert.session.date,
                "item": alert.item,
                "answer": alert.answer_label,
                "raised_at": alert.raised_at,
                "notified_at": alert.notified_at,
                "followed_up_at": alert.followed_up_at,
                "follow_up": alert.get_follow_up_display() if alert.follow_up else "",
                "by": "" if filters.pseudonymise or by is None else (by.get_full_name() or by.email),
                "note": "" if filters.pseudonymise else alert.follow_up_note,
            }
        )
    return {
        "symptoms": measures,
        "symptom_names": [course.spec.name for course in courses],
        "symptom_rows": rows,
        "safety_alerts": alerts,
        "asks_symptoms": bool(episode.patient.clinic.outcome_measures) or bool(measures) or bool(alerts),
    }


def _until(course: MeasureCourse, last: int) -> MeasureCourse:
    """The course as it stood at session ``last``: later scores left out, not on track judged on
    the last score kept (the rule of ``outcomes.selectors``: above the band, with two scores or more)."""
    keep = [i for i, (number, _) in enumerate(course.scores) if number <= last]
    if len(keep) == len(course.scores):
        return course
    scores = [course.scores[i] for i in keep]
    expected = [course.expected[i] for i in keep if i < len(course.expected)]
    off = bool(
        course.spec.higher_is_worse and len(scores) > 1 and expected and scores[-1][1] > expected[-1][2]
    )
    return replace(course, scores=scores, expected=expected, not_on_track=off)


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"
