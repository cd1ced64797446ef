"""The team page's figures: per therapist, how flags are met, forms come in, sessions are missed
and patients drop out, this period against the one before (docs/team.md has every definition).

For a supervisor the therapists assigned to them, for a clinic admin every therapist of the
clinic (``Membership.objects.overseen_by``). Only counts and a mean leave this module: no patient
is named. Figures belong to the therapist of the episode (a transfer starts a new episode, so a
patient's earlier sessions stay with the therapist who held them).

A constant number of queries whatever the team's size: therapists, episodes, sessions, flags, and
the scores of the episodes where the therapist rates sessions too.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef
from django.utils import timezone

from clinics.models import Clinic, Episode, Membership, Session
from monitoring.analytics.perspectives import paired_gaps, therapist_gaps
from monitoring.flags import events
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import Flag, Rater, Response

#: The period chooser: key -> (words, days). A period ends today and is compared with the period
#: of the same length just before it.
PERIODS: dict[str, tuple[str, int]] = {
    "4w": ("Last 4 weeks", 28),
    "quarter": ("Last 13 weeks (a quarter)", 91),
}
DEFAULT_PERIOD = "4w"
#: An unrepaired rupture counts as long open once its session is more than this many days ago.
LONG_OPEN_DAYS = 14
#: Dropout: an episode that ended with fewer held sessions than this ended early ...
EARLY_END_SESSIONS = 4
#: ... and an episode still open with no held session in this many days has lapsed.
LAPSED_DAYS = 28
#: Below this many patients a therapist's shares swing a lot: the page says so.
SMALL_NUMBERS = 5


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def closes(self) -> datetime:
        """The first moment after the period (midnight after its last day, local time)."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))


def periods(key: str, today: date) -> tuple[Period, Period]:
    """This period (ending today) and the one of the same length before it."""
    days = PERIODS[key][1]
    this = Period(today - timedelta(days=days - 1), today)
    return this, Period(this.start - timedelta(days=days), this.start - timedelta(days=1))


@dataclass(frozen=True)
class Figures:
    """One therapist's (or the team's) figures for one period."""

    patients: int = 0  # episodes open at the end of the period
    open_flags: int = 0  # events open for attention at the end of the period (the caseload's badges)
    long_unrepaired: int = 0  # of those: unrepaired ruptures found more than LONG_OPEN_DAYS before
    raised: int = 0  # alarms (one per patient and session) whose session is in the period
    acknowledged: int = 0  # of those, acknowledged by the end of the period
    hours_to_acknowledge: list[float] = field(default_factory=list)  # one per acknowledged one
    held: int = 0  # sessions held in the period
    forms_in: int = 0  # of those, with the patient's alliance answers
    no_shows: int = 0  # sessions in the period the patient did not attend
    episodes: int = 0  # episodes in therapy at some time in the period
    ended_early: int = 0  # ended in the period with fewer than EARLY_END_SESSIONS held sessions
    lapsed: int = 0  # open at the end of the period, no held session in its last LAPSED_DAYS days
    gap: float | None = None  # mean therapist-minus-patient total, each patient weighted equally
    gap_patients: int = 0
    gap_sessions: int = 0

    @property
    def acknowledged_share(self) -> float | None:
        return self.acknowledged / self.raised if self.raised else None

    @property
    def median_hours_to_acknowledge(self) -> float | None:
        return statistics.median(self.hours_to_acknowledge) if self.hours_to_acknowledge else None

    @property
    def completion(self) -> float | None:
        return self.forms_in / self.held if self.held else None

    @property
    def attended_or_missed(self) -> int:
        return self.held + self.no_shows

    @property
    def no_show_share(self) -> float | None:
        return self.no_shows / self.attended_or_missed if self.attended_or_missed else None

    @property
    def dropouts(self) -> int:
        return self.ended_early + self.lapsed

    @property
    def dropout_share(self) -> float | None:
        return self.dropouts / self.episodes if self.episodes else None

    @property
    def small(self) -> bool:
        return self.episodes < SMALL_NUMBERS


@dataclass(frozen=True)
class TherapistRow:
    membership: Membership | None  # None: the team's total
    this: Figures
    last: Figures

    @property
    def name(self) -> str:
        if self.membership is None:
            return "Whole team"
        user = self.membership.user
        return user.get_full_name() or user.email


@dataclass(frozen=True)
class TeamReport:
    clinic: Clinic
    period: str
    this: Period
    last: Period
    rows: list[TherapistRow]  # by name, never by any figure
    total: TherapistRow
    rates_sessions: bool  # some therapist of the team also rates sessions

    @property
    def period_words(self) -> str:
        return PERIODS[self.period][0]


def team_report(*, clinic: Clinic, user: User | AnonymousUser, period: str, today: date) -> TeamReport:
    """The team page: every therapist ``user`` oversees in ``clinic``, in name order, with this
    period's figures and the previous period's."""
    this, last = periods(period, today)
    therapists = list(
        Membership.objects.overseen_by(user)
        .filter(clinic=clinic)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user__email")
    )
    episodes = list(
        Episode.objects.filter(
            patient__clinic=clinic, therapist_id__in=[m.user_id for m in therapists], started_on__lte=today
        ).values_list("pk", "therapist_id", "started_on", "ended_on")
    )
    ids = [e[0] for e in episodes]
    sessions = list(
        Session.objects.filter(episode_id__in=ids, date__lte=today)
        .annotate(
            form_in=Exists(
                Response.objects.filter(session=OuterRef("pk"), rater=Rater.PATIENT, measure="alliance")
            )
        )
        .values_list("episode_id", "number", "date", "status", "form_in")
    )
    flags = list(
        Flag.objects.filter(episode_id__in=ids, session__date__lte=today)
        .select_related("session")
        .defer("explanation", "config", "acknowledged_note")
    )
    gaps = _gaps(sessions, ids)
    facts = EpisodeFacts.build(episodes, sessions, flags)
    by_therapist: dict[int, list[EpisodeFacts]] = {}
    for fact in facts:
        by_therapist.setdefault(fact.therapist_id, []).append(fact)

    def row(membership: Membership | None, mine: list[EpisodeFacts]) -> TherapistRow:
        return TherapistRow(
            membership=membership,
            this=figures(mine, gaps, this),
            last=figures(mine, gaps, last),
        )

    rows = [row(m, by_therapist.get(m.user_id, [])) for m in therapists]
    return TeamReport(
        clinic=clinic,
        period=period,
        this=this,
        last=last,
        rows=rows,
        total=row(None, facts),
        rates_sessions=not gaps.empty,
    )


def acknowledged_before(flag: Flag, moment: datetime) -> bool:
    return bool(flag.acknowledgement) and flag.acknowledged_at is not None and flag.acknowledged_at < moment


def as_it_stood(flag: Flag, moment: datetime) -> Flag:
    """The flag as it stood at ``moment``: an acknowledgement made later is not made yet."""
    if not flag.acknowledgement or acknowledged_before(flag, moment):
        return flag
    then = copy.copy(flag)
    then.acknowledgement = ""
    return then


@dataclass(frozen=True)
class EpisodeFacts:
    """What the figures need of one episode: its dates, its sessions and its flags."""

    episode: int
    therapist_id: int
    started_on: date
    ended_on: date | None
    sessions: list[tuple[int, date, str, bool]]  # number, date, status, form in
    flags: list[Flag]

    @classmethod
    def build(
        cls,
        episodes: Iterable[tuple[int, int, date, date | None]],
        sessions: Iterable[tuple[int, int, date, str, bool]],
        flags: Iterable[Flag],
    ) -> list[EpisodeFacts]:
        by_episode: dict[int, list[tuple[int, date, str, bool]]] = {}
        for episode, number, when, status, form_in in sessions:
            by_episode.setdefault(episode, []).append((number, when, status, form_in))
        flags_of: dict[int, list[Flag]] = {}
        for flag in flags:
            flags_of.setdefault(flag.episode_id, []).append(flag)
        return [
            cls(pk, therapist, started, ended, by_episode.get(pk, []), flags_of.get(pk, []))
            for pk, therapist, started, ended in episodes
        ]

    def open_on(self, day: date) -> bool:
        return self.started_on <= day and (self.ended_on is None or self.ended_on > day)

    def held_by(self, day: date) -> list[tuple[int, date, str, bool]]:
        return [s for s in self.sessions if s[2] == Session.Status.HELD and s[1] <= day]

    def attention(self, period: Period) -> list[list[Flag]]:
        """The events open for attention at the end of ``period``, each as its open flags: what
        the caseload showed then (``monitoring.flags.events``: a rupture's story counts once, and
        its rupture no longer once it was repaired or found unrepaired; ``counts_for_attention``
        for each flag, with the acknowledgements made by then)."""
        if not self.open_on(period.end):
            return []
        then = [as_it_stood(f, period.closes) for f in self.flags if f.session.date <= period.end]
        last_held = max((s[0] for s in self.held_by(period.end)), default=0)
        open_ = (events.open_flags(event, last_held=last_held) for event in events.flag_events(then))
        return [flags for flags in open_ if flags]


def figures(facts: Sequence[EpisodeFacts], gaps: pd.DataFrame, period: Period) -> Figures:
    """The figures of these episodes for one period (docs/team.md)."""
    patients = open_flags = long_unrepaired = raised = acknowledged = 0
    hours: list[float] = []
    held = forms_in = no_shows = episodes = ended_early = lapsed = 0
    long_ago = period.end - timedelta(days=LONG_OPEN_DAYS)
    for fact in facts:
        in_period = [s for s in fact.sessions if period.start <= s[1] <= period.end]
        held += sum(1 for s in in_period if s[2] == Session.Status.HELD)
        forms_in += sum(1 for s in in_period if s[2] == Session.Status.HELD and s[3])
        no_shows += sum(1 for s in in_period if s[2] == Session.Status.NO_SHOW)

        attention = fact.attention(period)
        open_flags += len(attention)
        long_unrepaired += sum(
            1
            for group in attention
            if any(f.kind == "unrepaired" and f.session.date < long_ago for f in group)
        )
        alarms: dict[int, list[Flag]] = {}
        for f in fact.flags:
            if f.alarm and period.start <= f.session.date <= period.end:
                alarms.setdefault(f.session.number, []).append(f)
        raised += len(alarms)
        for group in alarms.values():
            if all(acknowledged_before(f, period.closes) for f in group):
                acknowledged += 1
                done = max(f.acknowledged_at for f in group if f.acknowledged_at is not None)
                hours.append(max((done - min(f.created_at for f in group)).total_seconds(), 0) / 3600)

        if fact.started_on > period.end or (fact.ended_on is not None and fact.ended_on < period.start):
            continue
        episodes += 1
        if fact.open_on(period.end):
            patients += 1
            last = max((s[1] for s in fact.held_by(period.end)), default=fact.started_on)
            lapsed += (period.end - last).days >= LAPSED_DAYS
        elif fact.ended_on is not None and fact.ended_on <= period.end:
            ended_early += len(fact.held_by(fact.ended_on)) < EARLY_END_SESSIONS
    gap = _gap(gaps, [f.episode for f in facts], period)
    return Figures(
        patients=patients,
        open_flags=open_flags,
        long_unrepaired=long_unrepaired,
        raised=raised,
        acknowledged=acknowledged,
        hours_to_acknowledge=hours,
        held=held,
        forms_in=forms_in,
        no_shows=no_shows,
        episodes=episodes,
        ended_early=ended_early,
        lapsed=lapsed,
        **gap,
    )


def _gaps(sessions: Sequence[tuple[int, int, date, str, bool]], episode_ids: list[int]) -> pd.DataFrame:
    """Every session both the patient and the therapist rated: episode, session, date, gap
    (therapist's total minus the patient's, ``analytics.perspectives.paired_gaps``)."""
    rated = list(
        Response.objects.filter(
            session__episode_id__in=episode_ids, rater=Rater.THERAPIST, measure="alliance"
        )
        .values_list("session__episode_id", flat=True)
        .distinct()
    )
    if not rated:
        return pd.DataFrame(columns=["patient", "session", "gap", "date"])
    gaps = paired_gaps(
        scores_for_episodes(episode_ids=rated, rater=Rater.PATIENT),
        scores_for_episodes(episode_ids=rated, rater=Rater.THERAPIST),
    )
    dates = {(e, n): d for e, n, d, _, _ in sessions}
    gaps["date"] = [
        dates.get((int(e), int(n))) for e, n in zip(gaps["patient"], gaps["session"], strict=True)
    ]
    return gaps


def _gap(gaps: pd.DataFrame, episode_ids: list[int], period: Period) -> dict[str, Any]:
    """The mean gap of these episodes' paired sessions in the period, each patient weighted
    equally (``analytics.perspectives.therapist_gaps`` over one 'therapist': these episodes)."""
    if gaps.empty:
        return {}
    mine = gaps[
        gaps["patient"].isin(episode_ids)
        & gaps["date"].map(lambda d: d is not None and period.start <= d <= period.end)
    ]
    if mine.empty:
        return {}
    summary = therapist_gaps(mine, dict.fromkeys(mine["patient"].unique(), "all")).iloc[0]
    return {
        "gap": float(summary["mean_gap"]),
        "gap_patients": int(summary["pairs"]),
        "gap_sessions": int(summary["sessions"]),
    }
