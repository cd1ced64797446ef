"""The clinic report: completion, levels and flag figures over a period, by therapist and
treatment (the admin page and the clinic-summary export)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import Exists, OuterRef, Q

from clinics.models import Clinic, Episode, Session
from monitoring.analytics import analyse
from monitoring.flags.selectors import analysis_config
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import ClinicEstimate, Flag, Invitation, Response
from monitoring.outcomes.selectors import (
    AllianceLink,
    OutcomeRates,
    clinic_alliance_links,
    clinic_outcome_rates,
    link_sentence,
)

#: Below this many patients a per-therapist figure is shown with a small-numbers warning.
SMALL_NUMBERS = 5


@dataclass(frozen=True)
class ReportFilters:
    start: date
    end: date
    therapist_id: int | None = None
    treatment: str = ""


@dataclass(frozen=True)
class TherapistFigures:
    therapist: Any
    patients: int
    held: int
    completed: int
    patients_with_rupture: int
    repaired: int
    unrepaired: int
    declines: int
    attention_sessions: int = 0
    not_relevant_sessions: int = 0

    @property
    def completion(self) -> float | None:
        return self.completed / self.held if self.held else None

    @property
    def repair_rate(self) -> float | None:
        return self.repaired / (self.repaired + self.unrepaired) if self.repaired + self.unrepaired else None

    @property
    def small(self) -> bool:
        return self.patients < SMALL_NUMBERS

    @property
    def attention_per_100(self) -> float | None:
        """Sessions that raised attention, per 100 sessions with the patient's answers."""
        return 100.0 * self.attention_sessions / self.completed if self.completed else None

    @property
    def not_relevant_per_100(self) -> float | None:
        """Sessions whose every alarm a clinician marked "not relevant", per 100 sessions with
        answers: the false alarms as the clinic itself judged them."""
        return 100.0 * self.not_relevant_sessions / self.completed if self.completed else None


@dataclass(frozen=True)
class ClinicReport:
    filters: ReportFilters
    totals: TherapistFigures
    therapists: list[TherapistFigures]
    months: list[str]
    held_by_month: list[int]
    completed_by_month: list[int]
    links_sent: int
    levels: list[float]
    ceiling_share: float | None
    budget: float = 1.0
    calibration: dict[str, Any] | None = None
    outcomes: dict[str, list[OutcomeRates]] = field(default_factory=dict)
    links: list[tuple[AllianceLink, str]] = field(default_factory=list)  # (link, its sentence)


def clinic_report(*, clinic: Clinic, filters: ReportFilters) -> ClinicReport:
    """Clinic-level figures over a period (by session date). Flag figures count alarms as the
    caseload raised them (the unit of alarm is the patient-session: one event seen on several
    scales counts once); repairs are counted on the total alliance. With them: the clinic's
    false-alarm budget, the rate of attention sessions, and the rate clinicians judged "not
    relevant"."""
    episodes = Episode.objects.filter(patient__clinic=clinic).select_related("patient__clinic", "therapist")
    if filters.therapist_id:
        episodes = episodes.filter(therapist_id=filters.therapist_id)
    if filters.treatment:
        episodes = episodes.filter(treatment=filters.treatment)
    in_period = Q(date__gte=filters.start, date__lte=filters.end)
    held = (
        Session.objects.filter(in_period, episode__in=episodes, status=Session.Status.HELD)
        .annotate(
            done=Exists(Response.objects.filter(session=OuterRef("pk"), rater="patient", measure="alliance"))
        )
        .values_list("episode_id", "episode__therapist_id", "date", "done")
    )
    held_rows = list(held)
    active_episodes = list(episodes.filter(pk__in={r[0] for r in held_rows}))
    flags = list(
        Flag.objects.filter(
            episode__in=active_episodes, session__date__gte=filters.start, session__date__lte=filters.end
        )
        .filter(Q(alarm=True) | Q(kind="repair", scale="total"))
        .values_list("episode_id", "episode__therapist_id", "kind", "session_id", "acknowledgement")
    )
    links_sent = Invitation.objects.filter(
        session__episode__in=active_episodes,
        created_at__date__gte=filters.start,
        created_at__date__lte=filters.end,
    ).count()

    held_months = Counter(d.strftime("%Y-%m") for _, _, d, _ in held_rows)
    done_months = Counter(d.strftime("%Y-%m") for _, _, d, done in held_rows if done)
    months = sorted(held_months)
    held_by_month = [held_months[m] for m in months]
    completed_by_month = [done_months[m] for m in months]

    levels: list[float] = []
    ceiling_share = None
    if active_episodes:
        scores = scores_for_episodes(episode_ids=[e.pk for e in active_episodes])
        session_dates = {
            (e, n): d
            for e, n, d in Session.objects.filter(episode__in=active_episodes).values_list(
                "episode_id", "number", "date"
            )
        }
        # Levels as they stood at the end of the period: only sessions up to then.
        keep = [
            session_dates.get((p, n), filters.end) <= filters.end
            for p, n in zip(scores["patient"], scores["session"], strict=True)
        ]
        upto = scores[keep]
        if not upto.empty:
            analysis = analyse(upto, analysis_config(clinic=clinic))
            total = analysis.levels[analysis.levels["scale"] == "total"]
            levels = [float(v) for v in total["level_eb"].dropna()]
            ceiling_share = float(total["ceiling"].mean()) if len(total) else None

    def figures(therapist: Any, episode_ids: set[int]) -> TherapistFigures:
        mine = [r for r in held_rows if r[0] in episode_ids]
        mine_flags = [f for f in flags if f[0] in episode_ids]
        alarms = [f for f in mine_flags if f[2] != "repair"]
        judged: dict[int, set[str]] = {}
        for f in alarms:
            judged.setdefault(f[3], set()).add(f[4])
        return TherapistFigures(
            therapist=therapist,
            patients=len({r[0] for r in mine}),
            held=len(mine),
            completed=sum(1 for r in mine if r[3]),
            patients_with_rupture=len({f[0] for f in alarms if f[2] == "rupture"}),
            repaired=sum(1 for f in mine_flags if f[2] == "repair"),
            unrepaired=len({f[3] for f in alarms if f[2] == "unrepaired"}),
            declines=len({f[3] for f in alarms if f[2] == "decline"}),
            attention_sessions=len(judged),
            not_relevant_sessions=sum(1 for marks in judged.values() if marks == {"not_relevant"}),
        )

    by_therapist: dict[int, set[int]] = {}
    therapist_of: dict[int, Any] = {}
    for e in active_episodes:
        by_therapist.setdefault(e.therapist_id, set()).add(e.pk)
        therapist_of[e.therapist_id] = e.therapist
    therapists = sorted(
        (figures(therapist_of[t], ids) for t, ids in by_therapist.items()),
        key=lambda f: (f.therapist.last_name, f.therapist.first_name),
    )
    return ClinicReport(
        filters=filters,
        totals=figures(None, {e.pk for e in active_episodes}),
        therapists=therapists,
        months=months,
        held_by_month=held_by_month,
        completed_by_month=completed_by_month,
        links_sent=links_sent,
        levels=levels,
        ceiling_share=ceiling_share,
        budget=clinic.false_alarm_budget,
        calibration=_calibration(clinic),
        outcomes=clinic_outcome_rates(
            clinic=clinic,
            start=filters.start,
            end=filters.end,
            therapist_id=filters.therapist_id,
            treatment=filters.treatment,
        ),
        links=[(link, link_sentence(link, "PHQ-9")) for link in clinic_alliance_links(clinic=clinic)]
        if "phq9" in clinic.outcome_measures
        else [],
    )


def _calibration(clinic: Clinic) -> dict[str, Any] | None:
    latest = ClinicEstimate.objects.filter(clinic=clinic).order_by("-estimated_at").first()
    return (latest.parameters.get("calibration") or None) if latest else None
