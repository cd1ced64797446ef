"""Symptom outcomes as the pages, the report and the exports read them: each episode's PHQ-9 /
GAD-7 course and where it stands (severity band, reliable change, not on track, open safety
alerts), the clinic's expected-recovery curves, its NHS Talking Therapies rates, and the
within-patient alliance-outcome link in its own data (methods.md section 6)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from django.core.cache import cache
from django.db.models import Count, Max

from clinics.models import Clinic, Episode
from monitoring.analytics import alliance_outcome, episode_outcomes, expected_recovery
from monitoring.analytics.outcomes import AllianceOutcome, MeasureSpec, RecoveryCurves
from monitoring.instruments.measures import outcome_instruments, outcome_scores, specs
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import SafetyAlert

#: The smallest sample the clinic report states an alliance-outcome association for, and the
#: smallest group it gives outcome rates for without a small-numbers note.
MIN_LINK_PATIENTS = 20
MIN_LINK_OBSERVATIONS = 100
MIN_RATE_EPISODES = 10


@dataclass(frozen=True)
class MeasureCourse:
    """One measure's course in one episode and where it stands now."""

    spec: MeasureSpec
    scores: list[tuple[int, float]]  # (session number, score), answered sessions only
    expected: list[tuple[int, float, float]] = field(default_factory=list)  # (session, expected, upper)
    not_on_track: bool = False
    curve_source: str = ""  # "clinic" or "published"

    @property
    def first(self) -> float | None:
        return self.scores[0][1] if self.scores else None

    @property
    def latest(self) -> float | None:
        return self.scores[-1][1] if self.scores else None

    @property
    def latest_session(self) -> int | None:
        return self.scores[-1][0] if self.scores else None

    @property
    def band(self) -> str:
        return self.spec.band(self.latest) if self.latest is not None else ""

    @property
    def change(self) -> float | None:
        if len(self.scores) < 2:
            return None
        return self.scores[-1][1] - self.scores[0][1]

    @property
    def reliable(self) -> str:
        """ "improved", "deteriorated" or "" (NHS Talking Therapies thresholds)."""
        change = self.change
        if change is None:
            return ""
        if change <= -self.spec.reliable_change:
            return "improved" if self.spec.higher_is_worse else "deteriorated"
        if change >= self.spec.reliable_change:
            return "deteriorated" if self.spec.higher_is_worse else "improved"
        return ""

    def change_since(self, session: int) -> float | None:
        """Change from the last score at or before ``session`` to the latest (None without one)."""
        before = [score for number, score in self.scores if number <= session]
        if not before or self.latest_session is None or self.latest_session <= session:
            return None
        return self.scores[-1][1] - before[-1]


@dataclass(frozen=True)
class OutcomeStatus:
    """An episode's symptom measures (in the clinic's order) and its open safety alerts."""

    courses: dict[str, MeasureCourse] = field(default_factory=dict)
    safety: list[SafetyAlert] = field(default_factory=list)

    @property
    def curve_source(self) -> str:
        """ "clinic" when any expected course comes from the clinic's own finished episodes."""
        return "clinic" if any(c.curve_source == "clinic" for c in self.courses.values()) else "published"

    @property
    def not_on_track(self) -> list[MeasureCourse]:
        return [c for c in self.courses.values() if c.not_on_track]

    def worse_since(self, session: int) -> list[tuple[MeasureCourse, float]]:
        """Measures clearly worse since ``session``: up by at least half their reliable change."""
        out = []
        for course in self.courses.values():
            change = course.change_since(session)
            sign = 1 if course.spec.higher_is_worse else -1
            if change is not None and sign * change >= course.spec.reliable_change / 2:
                out.append((course, change))
        return out


def recovery_curves(*, clinic: Clinic, measures: Iterable[str] | None = None) -> dict[str, RecoveryCurves]:
    """Expected-recovery curves per measure from the clinic's finished episodes (published-norm
    fallback per intake band until a band has enough); cached until an episode ends."""
    finished = Episode.objects.filter(patient__clinic=clinic).exclude(ended_on=None)
    state = finished.aggregate(n=Count("pk"), last=Max("ended_on"))
    found = specs(outcome_instruments(measures))
    key = f"bordin:recovery:{clinic.pk}:{state['n']}:{state['last']}:{','.join(sorted(found))}"
    curves: dict[str, RecoveryCurves] | None = cache.get(key)
    if curves is None:
        scores = outcome_scores(episode_ids=finished.values_list("pk", flat=True)) if state["n"] else None
        curves = {}
        for code, spec in found.items():
            rows = (
                scores[scores["measure"] == code][["patient", "session", "score"]]
                if scores is not None
                else pd.DataFrame(columns=["patient", "session", "score"])
            )
            curves[code] = expected_recovery(rows, spec)
        cache.set(key, curves, 24 * 3600)
    return curves


def outcome_status_for_episodes(*, episodes: Sequence[Episode]) -> dict[int, OutcomeStatus]:
    """Where each episode's symptoms stand. A constant number of queries: the scores, the open
    safety alerts, and per clinic its curves (cached)."""
    if not episodes:
        return {}
    ids = [e.pk for e in episodes]
    scores = outcome_scores(episode_ids=ids).dropna(subset=["score"])
    alerts: dict[int, list[SafetyAlert]] = {}
    for alert in SafetyAlert.objects.open().filter(episode_id__in=ids).select_related("session"):
        alerts.setdefault(alert.episode_id, []).append(alert)
    found = specs(outcome_instruments(scores["measure"].unique())) if len(scores) else {}
    clinics = {e.patient.clinic_id: e.patient.clinic for e in episodes}
    curves = (
        {pk: recovery_curves(clinic=clinic, measures=found) for pk, clinic in clinics.items()}
        if found
        else {}
    )
    grouped = {key: group for key, group in scores.groupby(["patient", "measure"], sort=False)}
    out: dict[int, OutcomeStatus] = {}
    for episode in episodes:
        order = list(episode.patient.clinic.outcome_measures) + sorted(found)
        courses: dict[str, MeasureCourse] = {}
        for code in dict.fromkeys(order):
            group = grouped.get((episode.pk, code))
            if group is None or code not in found:
                continue
            courses[code] = _course(found[code], group, curves[episode.patient.clinic_id][code])
        out[episode.pk] = OutcomeStatus(courses=courses, safety=alerts.get(episode.pk, []))
    return out


def _course(spec: MeasureSpec, group: pd.DataFrame, curves: RecoveryCurves) -> MeasureCourse:
    points = [(int(s), float(v)) for s, v in group[["session", "score"]].itertuples(index=False)]
    intake_session, intake = points[0]
    band = spec.band(intake)
    curve_e, curve_u = curves.expected[band], curves.upper[band]
    offset = intake - float(curve_e[1])
    expected = []
    for number, _ in points:
        at = min(number - intake_session + 1, curve_e.size - 1)
        expected.append((number, float(curve_e[at]) + offset, float(curve_u[at]) + offset))
    latest = points[-1][1]
    off_track = len(points) > 1 and latest > expected[-1][2] if spec.higher_is_worse else False
    return MeasureCourse(
        spec=spec,
        scores=points,
        expected=expected,
        not_on_track=bool(off_track),
        curve_source=curves.source[band],
    )


# --- The clinic report --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRates:
    """NHS Talking Therapies outcomes of a group of finished episodes."""

    group: str
    episodes: int  # finished episodes with a first and last score on a measure
    cases: int  # of them, a case at the start
    recovery: float | None  # share of cases
    reliable_improvement: float | None  # share of episodes
    reliable_deterioration: float | None
    reliable_recovery: float | None  # share of cases
    small: bool  # fewer than MIN_RATE_EPISODES: read with care


def _rates(group: str, outcomes: pd.DataFrame) -> OutcomeRates:
    n = len(outcomes)
    cases = int(outcomes["caseness_start"].sum()) if n else 0

    def share(column: str, of_cases: bool) -> float | None:
        base = outcomes[outcomes["caseness_start"]] if of_cases else outcomes
        return float(base[column].astype(bool).mean()) if len(base) else None

    return OutcomeRates(
        group=group,
        episodes=n,
        cases=cases,
        recovery=share("recovery", True),
        reliable_improvement=share("reliable_improvement", False),
        reliable_deterioration=share("reliable_deterioration", False),
        reliable_recovery=share("reliable_recovery", True),
        small=n < MIN_RATE_EPISODES,
    )


def clinic_outcome_rates(
    *,
    clinic: Clinic,
    start: date | None = None,
    end: date | None = None,
    therapist_id: int | None = None,
    treatment: str = "",
) -> dict[str, list[OutcomeRates]]:
    """Recovery, reliable improvement and deterioration of the clinic's episodes that ended in
    the period (at least two scores on a measure), overall and by therapist, treatment and
    quarter of ending. Keys: "all", "therapist", "treatment", "period"."""
    finished = Episode.objects.filter(patient__clinic=clinic).exclude(ended_on=None)
    if start:
        finished = finished.filter(ended_on__gte=start)
    if end:
        finished = finished.filter(ended_on__lte=end)
    if therapist_id:
        finished = finished.filter(therapist_id=therapist_id)
    if treatment:
        finished = finished.filter(treatment=treatment)
    info = {
        e.pk: e
        for e in finished.select_related("therapist").only(
            "pk",
            "ended_on",
            "treatment",
            "therapist__first_name",
            "therapist__last_name",
            "therapist__username",
        )
    }
    scores = outcome_scores(episode_ids=list(info)).dropna(subset=["score"])
    two = scores.groupby(["patient", "measure"])["session"].transform("count") >= 2
    scores = scores[two & scores["measure"].isin(["phq9", "gad7"])]
    if scores.empty:
        return {"all": [_rates("All finished episodes", pd.DataFrame(columns=["caseness_start"]))]}
    outcomes = episode_outcomes(scores).set_index("patient")
    episodes = [info[int(pk)] for pk in outcomes.index]
    groups = {
        "therapist": [e.therapist.get_full_name() or e.therapist.username for e in episodes],
        "treatment": [e.get_treatment_display() for e in episodes],
        "period": [f"{e.ended_on.year} Q{(e.ended_on.month - 1) // 3 + 1}" for e in episodes if e.ended_on],
    }
    out = {"all": [_rates("All finished episodes", outcomes)]}
    for key, names in groups.items():
        by = pd.Series(names, index=outcomes.index)
        out[key] = [_rates(name, outcomes[by == name]) for name in sorted(set(names))]
    return out


@dataclass(frozen=True)
class AllianceLink:
    """The clinic's within-patient association for one alliance scale and one measure."""

    scale: str
    measure: str
    result: AllianceOutcome | None
    n_patients: int
    n_observations: int
    reason: str = ""  # why there is no estimate (too few data)


def clinic_alliance_links(
    *,
    clinic: Clinic,
    measures: Sequence[str] = ("phq9",),
    scales: Sequence[str] = ("total", "goal", "task", "bond"),
) -> list[AllianceLink]:
    """``alliance_outcome`` on the clinic's own data (all its episodes, each episode a patient
    course), per alliance scale and measure, with the small-numbers guard."""
    episode_ids = list(Episode.objects.filter(patient__clinic=clinic).values_list("pk", flat=True))
    alliance = scores_for_episodes(episode_ids=episode_ids)
    outcomes = outcome_scores(episode_ids=episode_ids, measures=measures).dropna(subset=["score"])
    links = []
    for measure in measures:
        rows = outcomes[outcomes["measure"] == measure][["patient", "session", "score"]]
        pairs = alliance.merge(rows, on=["patient", "session"])
        later = rows.assign(session=rows["session"] - 1)
        usable = pairs.merge(later[["patient", "session"]], on=["patient", "session"])
        n_patients, n_obs = int(usable["patient"].nunique()), len(usable)
        for scale in scales:
            if n_patients < MIN_LINK_PATIENTS or n_obs < MIN_LINK_OBSERVATIONS:
                links.append(
                    AllianceLink(
                        scale,
                        measure,
                        None,
                        n_patients,
                        n_obs,
                        reason=(
                            f"Too few data yet: {n_patients} patients and {n_obs} pairs of consecutive sessions "
                            f"with both measures; the report states an association from {MIN_LINK_PATIENTS} "
                            f"patients and {MIN_LINK_OBSERVATIONS} pairs."
                        ),
                    )
                )
                continue
            try:
                result = alliance_outcome(alliance, rows, lag=1, scale=scale)
            except (ValueError, ArithmeticError) as error:
                links.append(AllianceLink(scale, measure, None, n_patients, n_obs, reason=str(error)))
                continue
            if not all(math.isfinite(v) for v in (result.within.estimate, result.within.se)):
                links.append(
                    AllianceLink(scale, measure, None, n_patients, n_obs, reason="The model did not fit.")
                )
                continue
            links.append(AllianceLink(scale, measure, result, result.n_patients, result.n_observations))
    return links


def link_sentence(link: AllianceLink, measure_name: str) -> str:
    """The clinic report's sentence for one scale (methods.md section 6.3)."""
    from monitoring.flags.wording import SCALE_NAMES

    scale = SCALE_NAMES.get(link.scale, link.scale).lower()
    if link.result is None:
        return f"{SCALE_NAMES.get(link.scale, link.scale)}: {link.reason}"
    w = link.result.within
    direction = "lower" if w.estimate < 0 else "higher"
    text = (
        f"In this clinic, a session whose {scale} was 1 point above the patient's own usual level was "
        f"followed by a {measure_name} {abs(w.estimate):.1f} points {direction} at the next session "
        f"(95% CI {w.ci_low:+.1f} to {w.ci_high:+.1f}; {link.n_patients} patients, {link.n_observations} "
        "pairs of sessions)."
    )
    if w.ci_low <= 0 <= w.ci_high:
        text += " The interval includes no difference: these data show no clear association either way."
    return text
