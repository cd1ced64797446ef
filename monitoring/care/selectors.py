"""Reads behind the therapist's pages: the caseload (who needs attention, and why), the
notifications, and everything one patient's page shows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, NamedTuple

import pandas as pd
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, F, OuterRef, QuerySet

from clinics.models import Episode, Membership, Patient, Session, patient_search
from clinics.permissions import memberships_reaching, patients_visible_to
from clinics.selectors import patient_get_for_user
from monitoring.flags import events, wording
from monitoring.flags.selectors import snapshots_for_episodes
from monitoring.flags.snapshots import EpisodeFrames, Snapshot
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import (
    Answer,
    Flag,
    Instrument,
    Notification,
    Response,
    SafetyAlert,
)
from monitoring.outcomes.selectors import OutcomeStatus, outcome_status_for_episodes


@dataclass(frozen=True)
class Badge:
    kind: str
    label: str
    tone: str
    scales: tuple[str, ...]
    session: int
    since: int = 0  # where the event began: the rupture's session for an unrepaired rupture


@dataclass(frozen=True)
class CaseloadRow:
    patient: Patient
    sessions_held: int
    last_session_date: date | None
    form_missing: bool
    latest_total: float | None
    totals: list[float]
    level: float | None
    provisional: bool
    deviation: str
    badges: list[Badge]
    pattern: str
    priority: int
    reason: str
    outcomes: OutcomeStatus = field(default_factory=OutcomeStatus)

    @property
    def safety(self) -> bool:
        return bool(self.outcomes.safety)


def _badges(flags: list[Flag], last_session: int) -> list[Badge]:
    """One badge per open event (monitoring.flags.events: a rupture's story counts once), its
    reason the event's most serious open kind, naming only the scales whose flags of that kind
    are open; most serious first."""
    badges = []
    for event in events.flag_events(flags):
        open_ = events.open_flags(event, last_held=last_session)
        if not open_:
            continue
        kind = min((f.kind for f in open_), key=lambda k: (wording.PRIORITY.get(k, wording.NO_PRIORITY), k))
        badges.append(
            Badge(
                kind=kind,
                label=wording.FLAGS[kind].short,
                tone=wording.FLAGS[kind].tone,
                scales=tuple(
                    wording.SCALE_NAMES.get(s, s)
                    for s in events.scale_order({f.scale for f in open_ if f.kind == kind})
                ),
                session=max(f.session.number for f in open_ if f.kind == kind),
                since=event.start,
            )
        )
    return sorted(badges, key=lambda b: (wording.PRIORITY.get(b.kind, wording.NO_PRIORITY), -b.session))


def caseload_patients(
    *, user: User | AnonymousUser, therapist_id: int | None = None, query: str = ""
) -> QuerySet[Patient]:
    """The user's active patients on the caseload (of one therapist, matching a search)."""
    patients = (
        Patient.objects.visible_to(user)
        .filter(is_active=True)
        # The therapist and clinic read once each and shared by their patients (a 300-patient
        # caseload would otherwise build and parse 300 copies of each).
        .prefetch_related("therapist", "clinic")
        .order_by("label")
    )
    if therapist_id:
        patients = patients.filter(therapist_id=therapist_id)
    return patients.filter(patient_search(query))


def caseload_episodes(patients: Iterable[Patient]) -> list[Episode]:
    """The open episode of each patient (a patient has at most one)."""
    return list(
        Episode.objects.filter(patient__in=list(patients), ended_on=None).select_related("patient__clinic")
    )


def caseload_for_user(
    *, user: User | AnonymousUser, therapist_id: int | None = None, query: str = ""
) -> list[CaseloadRow]:
    """The user's active patients, most in need of attention first, with the reason in words."""
    return caseload_rows(patients=list(caseload_patients(user=user, therapist_id=therapist_id, query=query)))


def caseload_rows(*, patients: list[Patient], episodes: list[Episode] | None = None) -> list[CaseloadRow]:
    """The caseload rows of these patients, most in need of attention first.

    A constant number of queries whatever the caseload size: episodes, sessions with whether the
    patient's form is in, answers, flags, and the clinic estimate per clinic.
    """
    patients_list = patients
    if episodes is None:
        episodes = caseload_episodes(patients_list)
    episode_of = {e.patient_id: e for e in episodes}
    sessions = (
        Session.objects.filter(episode__in=episodes, status=Session.Status.HELD)
        .annotate(
            patient_in=Exists(
                Response.objects.filter(session=OuterRef("pk"), rater="patient", measure="alliance")
            )
        )
        .values_list("episode_id", "number", "date", "patient_in")
        .order_by("episode_id", "number")
    )
    held: dict[int, list[HeldSession]] = {}
    for episode_id, number, when, patient_in in sessions:
        held.setdefault(episode_id, []).append(HeldSession(number, when, patient_in))
    flags: dict[int, list[Flag]] = {}
    # Only what the badges read: a flag's config and explanation are the patient page's.
    badge_fields = ("episode_id", "scale", "kind", "alarm", "acknowledgement", "detail", "session__number")
    for flag in Flag.objects.filter(episode__in=episodes).select_related("session").only(*badge_fields):
        flags.setdefault(flag.episode_id, []).append(flag)
    latest = {
        episode_id: EpisodeLatest.of(snapshot.summary)
        for episode_id, snapshot in snapshots_for_episodes(episodes=episodes, with_frames=False).items()
    }
    outcomes = outcome_status_for_episodes(episodes=episodes)

    rows = []
    for patient in patients_list:
        episode = episode_of.get(patient.pk)
        history = held.get(episode.pk, []) if episode else []
        now = latest.get(episode.pk, EpisodeLatest()) if episode else EpisodeLatest()
        last_number = history[-1].number if history else 0
        badges = _badges(flags.get(episode.pk, []) if episode else [], last_number)
        form_missing = bool(history) and not history[-1].form_in
        symptoms = outcomes.get(episode.pk, OutcomeStatus()) if episode else OutcomeStatus()
        candidates = [_badge_reason(b, symptoms) for b in badges]
        candidates += _symptom_reasons(symptoms)
        if now.pattern == "crisis":
            candidates.append(
                (wording.PRIORITY["crisis"], _with_symptoms(wording.PATTERNS["crisis"].title, symptoms))
            )
        if form_missing:
            candidates.append((wording.PRIORITY["form_missing"], f"No form yet for session {last_number}"))
        priority, reason = min(candidates, default=(wording.NO_PRIORITY, ""))
        rows.append(
            CaseloadRow(
                patient=patient,
                sessions_held=len(history),
                last_session_date=history[-1].date if history else None,
                form_missing=form_missing,
                latest_total=now.totals[-1] if now.totals else None,
                totals=now.totals[-12:],
                level=now.level,
                provisional=now.provisional,
                deviation=wording.deviation_words(now.z),
                badges=badges,
                pattern=now.pattern,
                priority=priority,
                reason=reason,
                outcomes=symptoms,
            )
        )
    rows.sort(key=lambda r: (r.priority, -(r.last_session_date or date.min).toordinal(), r.patient.label))
    return rows


def _badge_reason(badge: Badge, symptoms: OutcomeStatus) -> tuple[int, str]:
    """An alliance flag in words; an unrepaired rupture followed by clearly worse symptoms
    comes first after safety ("rupture at session 8; PHQ-9 up 5 since")."""
    if badge.kind == "low_alliance":
        text = f"{wording.FLAGS['low_alliance'].title}: total below the clinic's cut-off since session {badge.since}"
    else:
        text = f"{badge.label} ({', '.join(badge.scales)}) at session {badge.session}"
    start = badge.since or badge.session
    since = symptoms.worse_since(start)
    changes = [
        f"{course.spec.name} {'up' if change > 0 else 'down'} {abs(change):.0f} since session {start}"
        for course in symptoms.courses.values()
        if (change := course.change_since(start)) is not None and change != 0
    ]
    if changes:
        text += "; " + ", ".join(changes)
    if badge.kind == "unrepaired" and since:
        return wording.PRIORITY["unrepaired_worse"], text
    return wording.PRIORITY[badge.kind], text


def _symptom_reasons(symptoms: OutcomeStatus) -> list[tuple[int, str]]:
    reasons = []
    if symptoms.safety:
        alert = symptoms.safety[0]
        reasons.append(
            (
                wording.PRIORITY["safety"],
                f"Safety: thoughts of self-harm ('{alert.answer_label}') at session {alert.session.number}; "
                "record your follow-up",
            )
        )
    for course in symptoms.not_on_track:
        expected = course.expected[-1][1] if course.expected else None
        reasons.append(
            (
                wording.PRIORITY["not_on_track"],
                f"{course.spec.name} not on track: {course.latest:.0f} at session {course.latest_session}"
                + (f", expected about {expected:.0f}" if expected is not None else ""),
            )
        )
    return reasons


def _with_symptoms(text: str, symptoms: OutcomeStatus) -> str:
    """A feedback pattern read together with the symptoms' change since the start."""
    changes = [
        f"{c.spec.name} {c.first:.0f} to {c.latest:.0f}"
        for c in symptoms.courses.values()
        if c.change is not None and c.first is not None and c.latest is not None
    ]
    return f"{text}; {', '.join(changes)}" if changes else text


class HeldSession(NamedTuple):
    number: int
    date: date
    form_in: bool  # the patient's answers are in


@dataclass(frozen=True)
class EpisodeLatest:
    """Where an episode stands, for its caseload row (from its snapshot's summary).

    "Usual level" is one number throughout: the prospective baseline the flags use (the mean of
    the earlier sessions outside ruptures, docs/methods.md 4.1), the one the latest session is
    judged against, so the row's number and its verdict agree. It is provisional below the rules'
    three baseline sessions; with no earlier session there is no usual level (and no verdict) yet.
    """

    totals: list[float] = field(default_factory=list)  # total alliance per answered session
    level: float | None = None  # the usual level: the prospective baseline of the latest session
    provisional: bool = False  # fewer earlier sessions than the rules need for a baseline
    z: float | None = None  # the latest session against that usual level, in spreads
    pattern: str = ""  # "crisis", "corrective" or ""

    @classmethod
    def of(cls, summary: dict[str, Any]) -> EpisodeLatest:
        return cls(
            totals=list(summary.get("totals", [])),
            level=summary.get("level"),
            provisional=bool(summary.get("provisional")),
            z=summary.get("z"),
            pattern=str(summary.get("pattern", "")),
        )


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def therapists_for_admin(*, user: User | AnonymousUser) -> list[Any]:
    """The therapists an admin or supervisor may filter the caseload by (empty for a therapist)."""
    if not any(
        m.role in (Membership.Role.ADMIN, Membership.Role.SUPERVISOR) for m in memberships_reaching(user=user)
    ):
        return []
    memberships = Membership.objects.overseen_by(user)
    return [
        m.user for m in memberships.select_related("user").order_by("user__last_name", "user__first_name")
    ]


@dataclass(frozen=True)
class PatientNews:
    patient: Patient
    count: int
    latest: Notification


def notifications_unread(*, user: User | AnonymousUser) -> list[PatientNews]:
    """New flags since the user last cleared them, one line per patient (most recent first),
    for patients the user may still see."""
    if not user.is_authenticated:
        return []
    pending = (
        Notification.objects.filter(
            user=user, read_at=None, flag__episode__patient__in=patients_visible_to(user=user)
        )
        .select_related("flag__session", "flag__episode__patient")
        # Only what the lines show (a notification's flag carries its whole explanation).
        .only(
            "created_at",
            "flag__kind",
            "flag__scale",
            "flag__session__number",
            "flag__episode__patient__label",
            "flag__episode__patient__code",
        )
        .order_by("-flag__session__number", "-created_at")
    )
    news: dict[int, list[Notification]] = {}
    for n in pending:
        news.setdefault(n.flag.episode.patient_id, []).append(n)
    return [PatientNews(items[0].flag.episode.patient, len(items), items[0]) for items in news.values()][
        :LATEST_SHOWN
    ]


#: Patients named in "New since your last visit" (the newest first).
LATEST_SHOWN = 20


@dataclass(frozen=True)
class StepView:
    """One step of an event's story (a kind of flag at a session, on one or more scales), with
    its own explanation and its own "How was this decided?"."""

    flag: Flag  # the step's headline flag (the total first)
    kind: str
    title: str
    words: str  # "not back by session 11"
    scales: list[str]
    rule: str


@dataclass(frozen=True)
class FlagView:
    """One event (monitoring.flags.events): a rupture's story, or a flag kind at a session seen
    on one or more scales, shown as one card."""

    flag: Flag  # the headline flag: the total's flag of the event's most serious kind
    others: list[Flag]  # every other flag of the event (acknowledged with it)
    title: str
    tone: str
    meaning: str
    prompt: str
    rule: str
    counts: bool  # still counts for the caseload (open, an alarm, and recent)
    steps: list[StepView] = field(default_factory=list)
    told: str = ""  # the story in plain words: "dropped at session 8; not back by session 11"
    story: bool = False  # a rupture and what followed it
    scale_names: list[str] = field(default_factory=list)
    start: int = 0  # where the event began (a rupture's session)
    last: int = 0  # its latest step's session

    @property
    def scales(self) -> list[str]:
        return self.scale_names or [wording.SCALE_NAMES[f.scale] for f in [self.flag, *self.others]]

    @property
    def flags(self) -> list[Flag]:
        return [self.flag, *self.others]

    @property
    def acknowledged(self) -> bool:
        """Every flag of the event is acknowledged (a step raised since reopens the card)."""
        return all(f.acknowledgement for f in self.flags)

    @property
    def acknowledgement(self) -> Flag | None:
        """The flag carrying the event's latest acknowledgement (who, when, the note), if any."""
        done = [f for f in self.flags if f.acknowledgement and f.acknowledged_at]
        return max(done, key=lambda f: f.acknowledged_at) if done else None  # type: ignore[arg-type,return-value]


def flag_views(flags: Iterable[Flag], *, last_held: int) -> list[FlagView]:
    """An episode's flags as events (``monitoring.flags.events``), newest first, with their
    wording: one card per rupture story or flag kind at a session."""
    views = []
    for event in events.flag_events(flags):
        head = event.head
        words = wording.FLAGS[event.kind]
        steps = [
            StepView(
                flag=step.head,
                kind=step.kind,
                title=wording.FLAGS[step.kind].title,
                words=step.words,
                # Named where they differ from the event's scales.
                scales=[]
                if event.scales_of(step.kind) == event.scales
                else [wording.SCALE_NAMES.get(s, s) for s in event.scales_of(step.kind)],
                rule=_rule(step.head),
            )
            for step in event.steps
        ]
        views.append(
            FlagView(
                flag=head,
                others=[f for f in event.flags if f is not head],
                title=words.title,
                tone=words.tone,
                meaning=wording.flag_meaning(
                    kind=event.kind, detail=head.detail, slope_window=head.config.get("slope_window")
                ),
                prompt=words.prompt,
                rule=_rule(head),
                counts=bool(events.open_flags(event, last_held=last_held)),
                steps=steps,
                told=event.told,
                story=event.story,
                scale_names=[wording.SCALE_NAMES.get(s, s) for s in event.scales],
                start=min(event.start, min(s.session for s in event.steps)),
                last=event.session,
            )
        )
    return views


def _rule(flag: Flag) -> str:
    """A flag's "How was this decided?" sentence."""
    return wording.rule_text(
        rule=str(flag.detail.get("rule", "")),
        scale=flag.scale,
        detail={
            "repair_tolerance": flag.config.get("repair_tolerance"),
            **flag.detail,
            "magnitude": flag.magnitude,
        },
        threshold=flag.threshold,
        slope_window=flag.config.get("slope_window"),
    )


@dataclass(frozen=True)
class SessionRow:
    session: Session
    patient_answers: dict[int, int]
    therapist_answers: dict[int, int]
    scores: dict[str, float | None]
    item_answers: tuple[int | None, ...] = ()  # the patient's answers in the items' order


@dataclass(frozen=True)
class UsualLevel:
    """The usual level of the patient page's headline: the prospective baseline (docs/methods.md
    4.1) the latest session and its flags were compared with, as on the caseload row."""

    level: float
    n: int  # earlier sessions it is the mean of
    session: int  # the session compared with it
    provisional: bool  # fewer than the rules' baseline sessions


def usual_level(snapshot: Snapshot | None) -> UsualLevel | None:
    """The latest answered session's baseline on the total; None before there is one."""
    if snapshot is None:
        return None
    answered = [
        row
        for row in snapshot.rows("sessions", "session", "scale", "score", "baseline", "n_baseline")
        if row[1] == "total" and _float(row[2]) is not None
    ]
    if not answered:
        return None
    number, _, _, baseline, n_baseline = max(answered, key=lambda row: int(row[0]))
    level = _float(baseline)
    if level is None:
        return None
    n = int(_float(n_baseline) or 0)
    return UsualLevel(level=level, n=n, session=int(number), provisional=n < snapshot.min_baseline)


@dataclass(frozen=True)
class PatientDashboard:
    patient: Patient
    episode: Episode | None
    sessions: list[SessionRow]
    flags: list[FlagView]
    therapist_scores: pd.DataFrame
    levels: dict[str, dict[str, Any]]
    pattern: dict[str, str] | None
    items: list[tuple[int, str]]
    outcomes: OutcomeStatus = field(default_factory=OutcomeStatus)
    alerts: list[SafetyAlert] = field(default_factory=list)  # every safety alert of the episode
    snapshot: Snapshot | None = None  # what the analysis figures were read from

    @cached_property
    def frames(self) -> EpisodeFrames | None:
        """The snapshot's frames in pandas (for the charts; built on first use)."""
        return self.snapshot.frames if self.snapshot is not None else None

    @property
    def followed_up(self) -> list[SafetyAlert]:
        """The safety alerts a clinician has followed up, newest first."""
        return [a for a in self.alerts if a.followed_up_at is not None]


def patient_dashboard(*, user: User | AnonymousUser, code: object) -> PatientDashboard:
    """Everything the patient page shows, in a constant number of queries."""
    patient = patient_get_for_user(user=user, code=code)
    episode = (
        Episode.objects.filter(patient=patient)
        .select_related("patient__clinic", "therapist")
        .order_by(F("ended_on").desc(nulls_first=True), "-started_on")
        .first()
    )
    if episode is None:
        return PatientDashboard(patient, None, [], [], pd.DataFrame(), {}, None, [])
    snapshot = snapshots_for_episodes(episodes=[episode]).get(episode.pk)
    answers: dict[tuple[int, str], dict[int, int]] = {}
    for number, rater, item, value in Answer.objects.filter(
        response__session__episode=episode, response__measure="alliance"
    ).values_list("response__session__number", "response__rater", "item__number", "value"):
        answers.setdefault((number, rater), {})[item] = value
    scores: dict[int, dict[str, float | None]] = {}
    levels: dict[str, dict[str, Any]] = {}
    pattern = None
    if snapshot is not None:
        # Read from the stored columns as they are; the frames are built in pandas only when the
        # charts are drawn (PatientDashboard.frames).
        for number, scale, score in snapshot.rows("sessions", "session", "scale", "score"):
            scores.setdefault(int(number), {})[str(scale)] = _float(score)
        columns = snapshot.columns("levels")
        for values in snapshot.rows("levels", *columns):
            row = dict(zip(columns, values, strict=True))
            levels[str(row["scale"])] = row
        patterns = snapshot.rows("patterns", "pattern", "explanation")
        if patterns and patterns[0][0] in wording.PATTERNS:
            kind, explanation = patterns[0]
            words = wording.PATTERNS[str(kind)]
            pattern = {
                "kind": str(kind),
                "title": words.title,
                "meaning": words.meaning,
                "prompt": words.prompt,
                # The analysis's sentence says "level" for the person mean; the page calls that
                # the long-run level (the usual level is the flags' baseline).
                "explanation": str(explanation).replace("(level ", "(long-run level "),
            }
    sessions = list(episode.sessions.order_by("-number"))
    last_held = max((s.number for s in sessions if s.status == Session.Status.HELD), default=0)
    flags = flag_views(
        episode.flags.select_related("session", "acknowledged_by", "estimate"), last_held=last_held
    )
    structure = _instrument_structure_for_episode(episode)
    return PatientDashboard(
        patient=patient,
        episode=episode,
        sessions=[
            SessionRow(
                s,
                answers.get((s.number, "patient"), {}),
                answers.get((s.number, "therapist"), {}),
                scores.get(s.number, {}),
                tuple(answers.get((s.number, "patient"), {}).get(number) for number, _ in structure),
            )
            for s in sessions
        ],
        flags=flags,
        therapist_scores=scores_for_episodes(episode_ids=[episode.pk], rater="therapist"),
        levels=levels,
        pattern=pattern,
        items=structure,
        outcomes=outcome_status_for_episodes(episodes=[episode]).get(episode.pk, OutcomeStatus()),
        alerts=list(episode.safety_alerts.select_related("session", "followed_up_by")),
        snapshot=snapshot,
    )


def _instrument_structure_for_episode(episode: Episode) -> list[tuple[int, str]]:
    """(item number, subscale) of the clinic's patient instrument, for the answers table."""
    instrument = (
        Instrument.objects.filter(code=episode.patient.clinic.instrument_code, rater="patient")
        .order_by("-version")
        .first()
        or Instrument.objects.filter(rater="patient").first()
    )
    if instrument is None:
        return []
    return list(instrument.items.order_by("number").values_list("number", "subscale"))
