"""Reads. Every query that returns patient data starts here and applies the access rules."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from auditlog.models import LogEntry
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from clinics.models import Clinic, Episode, Membership, Patient, Session
from monitoring import wording
from monitoring.analytics import Analysis, AnalysisConfig, ClinicParameters, analyse
from monitoring.analytics.scoring import score_items
from monitoring.models import (
    Answer,
    ClinicEstimate,
    Flag,
    Instrument,
    InstrumentItem,
    Invitation,
    Notification,
    Response,
)


def patients_visible_to(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may see: a therapist their own, an admin their clinic's.

    The one access rule for patient data; every page and endpoint reaches patients through it.
    """
    if not user.is_authenticated:
        return Patient.objects.none()
    memberships = Membership.objects.filter(user=user, is_active=True)
    admin_clinics = memberships.filter(role=Membership.Role.ADMIN).values("clinic")
    therapist_clinics = memberships.filter(role=Membership.Role.THERAPIST).values("clinic")
    return Patient.objects.filter(
        Q(clinic__in=admin_clinics) | Q(clinic__in=therapist_clinics, therapist=user)
    )


def patient_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Patient]:
    """Active patients the user may see, with their number of sessions held."""
    return (
        patients_visible_to(user=user)
        .filter(is_active=True)
        .select_related("therapist", "clinic")
        .annotate(sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")))
        .order_by("label")
    )


def patient_get_for_user(*, user: User | AnonymousUser, code: object) -> Patient:
    """The patient with this code, or 404 if it does not exist or the user may not see it."""
    return get_object_or_404(patients_visible_to(user=user).select_related("clinic", "therapist"), code=code)


def session_get_for_user(*, user: User | AnonymousUser, code: object) -> Session:
    return get_object_or_404(
        Session.objects.filter(episode__patient__in=patients_visible_to(user=user)).select_related(
            "episode__patient__clinic", "episode__therapist"
        ),
        code=code,
    )


def sessions_for_kiosk(*, user: User | AnonymousUser, since: date) -> QuerySet[Session]:
    """Recent held or scheduled sessions without the patient's answers, for the tablet picker."""
    return (
        Session.objects.filter(episode__patient__in=patients_visible_to(user=user), episode__ended_on=None)
        .filter(date__gte=since, status__in=[Session.Status.HELD, Session.Status.SCHEDULED])
        .exclude(responses__rater="patient")
        .select_related("episode__patient")
        .order_by("-date", "episode__patient__label")
    )


def scores_for_episodes(*, episode_ids: Iterable[int], rater: str = "patient") -> pd.DataFrame:
    """Scale scores, one row per response: ``patient`` (the episode id), ``session`` (number),
    ``goal``, ``task``, ``bond``, ``total``; the input of ``monitoring.analytics.analyse``.

    Each response is scored with its own instrument version's structure (methods section 1).
    Two flat queries (responses, then their answers) built straight into arrays: on a caseload
    this is the largest read of the page.
    """
    columns = ["patient", "session", "goal", "task", "bond", "total"]
    ids = list(episode_ids)
    responses = list(
        Response.objects.filter(session__episode_id__in=ids, rater=rater).values_list(
            "pk", "session__episode_id", "session__number", "instrument_id"
        )
    )
    if not responses:
        return pd.DataFrame(columns=columns).astype({"patient": "int64", "session": "int64"})
    # item_id, not item__number: the join to the items table doubled the cost of this query; and
    # the rows go straight from the cursor into one integer array, skipping the ORM's per-row work
    # (half the time of a caseload's largest read).
    answers = Answer.objects.filter(response__session__episode_id__in=ids, response__rater=rater).values_list(
        "response_id", "item_id", "value"
    )
    sql, params = answers.query.sql_with_params()
    with connections[answers.db].cursor() as cursor:
        cursor.execute(sql, params)
        flat = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 3)
    response_ids, item_ids, values = flat[:, 0], flat[:, 1], flat[:, 2]
    keys = pd.DataFrame.from_records(responses, columns=["response", "patient", "session", "instrument"])
    number_of = dict(
        InstrumentItem.objects.filter(instrument_id__in=keys["instrument"].unique().tolist()).values_list(
            "pk", "number"
        )
    )
    item_numbers = pd.Series(item_ids).map(number_of).to_numpy()
    instrument_of = keys.set_index("response")["instrument"]
    answer_instrument = instrument_of.reindex(response_ids).to_numpy()
    frames = []
    for instrument_id in pd.unique(answer_instrument):
        mask = answer_instrument == instrument_id
        group = pd.DataFrame(
            {"response": response_ids[mask], "item": item_numbers[mask], "value": values[mask]}
        )
        frames.append(score_items(group, **_instrument_structure(int(instrument_id))))
    scored = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    merged = keys.merge(scored, on="response", how="inner")
    return merged[columns].sort_values(["patient", "session"], ignore_index=True)


def _instrument_structure(instrument_id: int) -> dict[str, Any]:
    instrument = Instrument.objects.prefetch_related("items").get(pk=instrument_id)
    subscales: dict[str, list[int]] = {}
    for item in instrument.items.all():
        subscales.setdefault(item.subscale, []).append(item.number)
    return {
        "subscales": subscales,
        "reverse_keyed": {i.number for i in instrument.items.all() if i.reverse_keyed},
        "scale_min": instrument.scale_min,
        "scale_max": instrument.scale_max,
    }


def response_scores(*, response: Response) -> list[dict[str, Any]]:
    """One response's subscale and total scores, for the patient's own thank-you page."""
    answers = pd.DataFrame.from_records(
        list(response.answers.values_list("response_id", "item__number", "value")),
        columns=["response", "item", "value"],
    )
    scored = score_items(answers, **_instrument_structure(response.instrument_id)).iloc[0]
    wording = response.instrument.translation(get_language() or "en")
    names = {**wording.subscale_names, "total": _("Overall")}
    return [
        {"scale": scale, "name": names.get(scale, scale), "score": round(float(scored[scale]), 1)}
        for scale in [*response.instrument.subscales, "total"]
        if not pd.isna(scored[scale])
    ]


# --- Caseload and patient dashboards ------------------------------------------------------------

#: A flag counts for the caseload's attention list while it is unacknowledged and was raised
#: within this many of the patient's latest sessions; older ones stay listed on the patient page.
#: An unrepaired rupture is the exception: it counts until someone has acknowledged it, because
#: unrepaired, not the rupture itself, carries the outcome risk.
ATTENTION_WINDOW = 6
STAYS_UNTIL_ACKNOWLEDGED = frozenset({"unrepaired"})


def counts_for_attention(*, kind: str, session: int, acknowledged: bool, last_held: int) -> bool:
    if acknowledged or kind in ("repair", "sudden_gain"):
        return False
    return kind in STAYS_UNTIL_ACKNOWLEDGED or session > last_held - ATTENTION_WINDOW


@dataclass(frozen=True)
class Badge:
    kind: str
    label: str
    tone: str
    scales: tuple[str, ...]
    session: int


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


def clinic_estimate_latest(*, clinic: Clinic) -> ClinicEstimate | None:
    return ClinicEstimate.objects.filter(clinic=clinic).order_by("-estimated_at").first()


def analysis_config(*, clinic: Clinic, estimate: ClinicEstimate | None = None) -> AnalysisConfig:
    """The clinic's sensitivity with its stored reference values (the latest estimate unless one
    is given). With none stored yet, analyse() estimates them from the data it is given."""
    estimate = estimate or clinic_estimate_latest(clinic=clinic)
    parameters = ClinicParameters.from_dict(estimate.parameters) if estimate else None
    return AnalysisConfig.preset(clinic.sensitivity, clinic=parameters)


def analysis_for_episodes(*, episodes: Sequence[Episode]) -> dict[int, Analysis]:
    """The analysis of each episode's patient ratings, with its clinic's stored reference values
    and sensitivity, computed once per clinic for all its episodes (vectorised)."""
    by_clinic: dict[int, list[Episode]] = {}
    for episode in episodes:
        by_clinic.setdefault(episode.patient.clinic_id, []).append(episode)
    result: dict[int, Analysis] = {}
    for clinic_episodes in by_clinic.values():
        clinic = clinic_episodes[0].patient.clinic
        scores = scores_for_episodes(episode_ids=[e.pk for e in clinic_episodes])
        if scores.empty:
            continue
        analysis = analyse(scores, analysis_config(clinic=clinic))
        for episode in clinic_episodes:
            result[episode.pk] = analysis
    return result


def _badges(flags: list[Flag], last_session: int) -> list[Badge]:
    """Unacknowledged recent flags, one badge per kind (listing its scales), most serious first."""
    recent = [
        f
        for f in flags
        if counts_for_attention(
            kind=f.kind,
            session=f.session.number,
            acknowledged=bool(f.acknowledgement),
            last_held=last_session,
        )
    ]
    # A rupture that has since been repaired or declared unrepaired is no longer "open".
    closed = {(f.scale, f.detail.get("rupture_session")) for f in flags if f.kind in ("repair", "unrepaired")}
    badges: dict[str, list[Flag]] = {}
    for f in recent:
        if f.kind == "rupture" and (f.scale, f.session.number) in closed:
            continue
        badges.setdefault(f.kind, []).append(f)
    return sorted(
        (
            Badge(
                kind=kind,
                label=wording.FLAGS[kind].short,
                tone=wording.FLAGS[kind].tone,
                scales=tuple(dict.fromkeys(wording.SCALE_NAMES[f.scale] for f in group)),
                session=max(f.session.number for f in group),
            )
            for kind, group in badges.items()
        ),
        key=lambda b: wording.PRIORITY.get(b.kind, wording.NO_PRIORITY),
    )


def caseload_for_user(
    *, user: User | AnonymousUser, therapist_id: int | None = None, query: str = ""
) -> list[CaseloadRow]:
    """The user's active patients, most in need of attention first, with the reason in words.

    A constant number of queries whatever the caseload size: patients, episodes, sessions with
    whether the patient's form is in, answers, flags, and the clinic estimate per clinic.
    """
    patients = patient_list_for_user(user=user)
    if therapist_id:
        patients = patients.filter(therapist_id=therapist_id)
    if query:
        patients = patients.filter(Q(label__icontains=query) | Q(external_id__icontains=query))
    patients_list = list(patients)
    episodes = list(
        Episode.objects.filter(patient__in=patients_list, ended_on=None).select_related("patient__clinic")
    )
    episode_of = {e.patient_id: e for e in episodes}
    sessions = (
        Session.objects.filter(episode__in=episodes, status=Session.Status.HELD)
        .annotate(patient_in=Exists(Response.objects.filter(session=OuterRef("pk"), rater="patient")))
        .values_list("episode_id", "number", "date", "patient_in")
        .order_by("episode_id", "number")
    )
    held: dict[int, list[tuple[int, date, bool]]] = {}
    for episode_id, number, when, patient_in in sessions:
        held.setdefault(episode_id, []).append((number, when, patient_in))
    flags: dict[int, list[Flag]] = {}
    for flag in Flag.objects.filter(episode__in=episodes).select_related("session"):
        flags.setdefault(flag.episode_id, []).append(flag)
    analyses = analysis_for_episodes(episodes=episodes)
    latest = _latest_by_episode(analyses)

    rows = []
    for patient in patients_list:
        episode = episode_of.get(patient.pk)
        history = held.get(episode.pk, []) if episode else []
        nothing: tuple[list[float], float | None, bool, float | None, str] = ([], None, False, None, "")
        totals, level, provisional, z, pattern = latest.get(episode.pk, nothing) if episode else nothing
        last_number = history[-1][0] if history else 0
        badges = _badges(flags.get(episode.pk, []) if episode else [], last_number)
        form_missing = bool(history) and not history[-1][2]
        candidates = [
            (wording.PRIORITY[b.kind], f"{b.label} ({', '.join(b.scales)}) at session {b.session}")
            for b in badges
        ]
        if pattern == "crisis":
            candidates.append((wording.PRIORITY["crisis"], wording.PATTERNS["crisis"].title))
        if form_missing:
            candidates.append((wording.PRIORITY["form_missing"], f"No form yet for session {last_number}"))
        priority, reason = min(candidates, default=(wording.NO_PRIORITY, ""))
        rows.append(
            CaseloadRow(
                patient=patient,
                sessions_held=len(history),
                last_session_date=history[-1][1] if history else None,
                form_missing=form_missing,
                latest_total=totals[-1] if totals else None,
                totals=totals[-12:],
                level=level,
                provisional=provisional,
                deviation=wording.deviation_words(z),
                badges=badges,
                pattern=pattern,
                priority=priority,
                reason=reason,
            )
        )
    rows.sort(key=lambda r: (r.priority, -(r.last_session_date or date.min).toordinal(), r.patient.label))
    return rows


def _latest_by_episode(
    analyses: dict[int, Analysis],
) -> dict[int, tuple[list[float], float | None, bool, float | None, str]]:
    """Per episode: recent totals, level, provisional, latest deviation (z against the baseline
    before it, in the patient's spread) and pattern; one pass per analysis, not per patient."""
    out: dict[int, tuple[list[float], float | None, bool, float | None, str]] = {}
    for analysis in {id(a): a for a in analyses.values()}.values():
        sessions = analysis.sessions[analysis.sessions["scale"] == "total"]
        levels = analysis.levels[analysis.levels["scale"] == "total"].set_index("patient")
        patterns = analysis.patterns.set_index("patient")["pattern"]
        last = sessions.groupby("patient", sort=False).tail(1).set_index("patient")
        # How the latest session compares with the level before it (the prospective baseline the
        # flags use); the retrospective z where there is no baseline yet.
        z = ((last["score"] - last["baseline"]) / last["s_used"]).fillna(last["z"])
        for episode_id, scores in sessions.groupby("patient", sort=False)["score"]:
            totals = [float(v) for v in scores.dropna()]
            pattern = str(patterns.get(episode_id, "none"))
            out[int(episode_id)] = (
                totals,
                _float(levels.at[episode_id, "level"]) if episode_id in levels.index else None,
                bool(levels.at[episode_id, "provisional"]) if episode_id in levels.index else False,
                _float(z.get(episode_id)),
                "" if pattern == "none" else pattern,
            )
    return out


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def therapists_for_admin(*, user: User | AnonymousUser) -> list[Any]:
    """The therapists an admin may filter the caseload by (empty for a therapist)."""
    if not user.is_authenticated:
        return []
    admin_clinics = Membership.objects.filter(user=user, is_active=True, role=Membership.Role.ADMIN).values(
        "clinic"
    )
    memberships = Membership.objects.filter(
        clinic__in=admin_clinics, role=Membership.Role.THERAPIST, is_active=True
    )
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
    pending = Notification.objects.filter(
        user=user, read_at=None, flag__episode__patient__in=patients_visible_to(user=user)
    ).select_related("flag__session", "flag__episode__patient")
    news: dict[int, list[Notification]] = {}
    for n in pending.order_by("-flag__session__number", "-created_at"):
        news.setdefault(n.flag.episode.patient_id, []).append(n)
    return [PatientNews(items[0].flag.episode.patient, len(items), items[0]) for items in news.values()][:20]


#: Which scale's flag speaks for an event seen on several scales at once.
HEADLINE_ORDER = {"decline": ("task", "agreement", "total", "goal", "bond")}
DEFAULT_HEADLINE_ORDER = ("total", "agreement", "task", "goal", "bond")


@dataclass(frozen=True)
class FlagView:
    """One event (kind at a session), usually seen on several scales at once, shown once."""

    flag: Flag  # the headline flag: the total, or task agreement for a decline
    others: list[Flag]
    title: str
    tone: str
    meaning: str
    prompt: str
    rule: str
    counts: bool  # still counts for the caseload (unacknowledged and recent)

    @property
    def scales(self) -> list[str]:
        return [wording.SCALE_NAMES[f.scale] for f in [self.flag, *self.others]]


def flag_views(flags: Iterable[Flag], *, last_held: int) -> list[FlagView]:
    """Group an episode's flags by (session, kind), newest first, with their wording."""
    groups: dict[tuple[int, str], list[Flag]] = {}
    for f in flags:
        groups.setdefault((f.session.number, f.kind), []).append(f)
    views = []
    for (number, kind), group in sorted(
        groups.items(), key=lambda kv: (-kv[0][0], wording.PRIORITY.get(kv[0][1], 9))
    ):
        order = HEADLINE_ORDER.get(kind, DEFAULT_HEADLINE_ORDER)
        group.sort(key=lambda f: order.index(f.scale) if f.scale in order else len(order))
        head = group[0]
        words = wording.FLAGS[kind]
        views.append(
            FlagView(
                flag=head,
                others=group[1:],
                title=words.title,
                tone=words.tone,
                meaning=words.meaning,
                prompt=words.prompt,
                rule=wording.rule_text(
                    rule=str(head.detail.get("rule", "")),
                    scale=head.scale,
                    detail=head.detail,
                    threshold=head.threshold,
                ),
                counts=counts_for_attention(
                    kind=kind,
                    session=number,
                    acknowledged=all(f.acknowledgement for f in group),
                    last_held=last_held,
                ),
            )
        )
    return views


@dataclass(frozen=True)
class SessionRow:
    session: Session
    patient_answers: dict[int, int]
    therapist_answers: dict[int, int]
    scores: dict[str, float | None]


@dataclass(frozen=True)
class PatientDashboard:
    patient: Patient
    episode: Episode | None
    analysis: Analysis | None
    sessions: list[SessionRow]
    flags: list[FlagView]
    therapist_scores: pd.DataFrame
    levels: dict[str, dict[str, Any]]
    pattern: dict[str, str] | None
    items: list[tuple[int, str]]


def flags_visible_to(*, user: User | AnonymousUser) -> QuerySet[Flag]:
    return Flag.objects.filter(episode__patient__in=patients_visible_to(user=user))


def flag_get_for_user(*, user: User | AnonymousUser, code: object) -> Flag:
    return get_object_or_404(
        flags_visible_to(user=user).select_related("episode__patient", "session"), code=code
    )


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
        return PatientDashboard(patient, None, None, [], [], pd.DataFrame(), {}, None, [])
    analysis = analysis_for_episodes(episodes=[episode]).get(episode.pk)
    answers: dict[tuple[int, str], dict[int, int]] = {}
    for number, rater, item, value in Answer.objects.filter(response__session__episode=episode).values_list(
        "response__session__number", "response__rater", "item__number", "value"
    ):
        answers.setdefault((number, rater), {})[item] = value
    scores: dict[int, dict[str, float | None]] = {}
    levels: dict[str, dict[str, Any]] = {}
    pattern = None
    if analysis is not None:
        mine = analysis.sessions[analysis.sessions["patient"] == episode.pk]
        for number, scale, score in mine[["session", "scale", "score"]].itertuples(index=False):
            scores.setdefault(int(number), {})[str(scale)] = _float(score)
        for row in analysis.levels[analysis.levels["patient"] == episode.pk].to_dict("records"):
            levels[str(row["scale"])] = row
        pat = analysis.patterns[analysis.patterns["patient"] == episode.pk]
        if len(pat) and pat["pattern"].iloc[0] in wording.PATTERNS:
            words = wording.PATTERNS[str(pat["pattern"].iloc[0])]
            pattern = {
                "title": words.title,
                "meaning": words.meaning,
                "prompt": words.prompt,
                "explanation": str(pat["explanation"].iloc[0]),
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
        analysis=analysis,
        sessions=[
            SessionRow(
                s,
                answers.get((s.number, "patient"), {}),
                answers.get((s.number, "therapist"), {}),
                scores.get(s.number, {}),
            )
            for s in sessions
        ],
        flags=flags,
        therapist_scores=scores_for_episodes(episode_ids=[episode.pk], rater="therapist"),
        levels=levels,
        pattern=pattern,
        items=structure,
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


# --- Clinic administration ------------------------------------------------------------------------


def clinic_for_admin(*, user: User | AnonymousUser, slug: str) -> Clinic:
    """The clinic, if the user is one of its active admins; 404 for everyone else."""
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Clinic.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.ADMIN, memberships__is_active=True
        ),
        slug=slug,
    )


def clinics_administered(*, user: User | AnonymousUser) -> list[Clinic]:
    if not user.is_authenticated:
        return []
    return list(
        Clinic.objects.filter(
            memberships__user=user, memberships__role=Membership.Role.ADMIN, memberships__is_active=True
        ).order_by("name")
    )


def staff_for_clinic(*, clinic: Clinic) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(clinic=clinic)
        .select_related("user")
        .annotate(
            active_patients=Count(
                "user__patients", filter=Q(user__patients__clinic=clinic, user__patients__is_active=True)
            )
        )
        .order_by("-is_active", "user__last_name", "user__first_name")
    )


def patients_past_retention(*, clinic: Clinic, today: date) -> QuerySet[Patient]:
    """Discharged patients whose last episode ended more than the clinic's retention period ago:
    their data is due for deletion (the admin decides; erasure is an audited action)."""
    year = today.year - clinic.retention_years
    cutoff = (
        today.replace(year=year, day=28) if (today.month, today.day) == (2, 29) else today.replace(year=year)
    )
    open_episode = Episode.objects.filter(patient=OuterRef("pk"), ended_on=None)
    recent_episode = Episode.objects.filter(patient=OuterRef("pk"), ended_on__gt=cutoff)
    return (
        Patient.objects.filter(clinic=clinic, is_active=False)
        .exclude(Exists(open_episode))
        .exclude(Exists(recent_episode))
    )


def patients_for_admin(*, clinic: Clinic, active: bool, query: str = "") -> QuerySet[Patient]:
    patients = Patient.objects.filter(clinic=clinic, is_active=active).select_related("therapist")
    if query:
        patients = patients.filter(Q(label__icontains=query) | Q(external_id__icontains=query))
    return patients.annotate(
        open_episodes=Count("episodes", filter=Q(episodes__ended_on=None)),
        sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")),
    ).order_by("label")


# --- Clinic report ------------------------------------------------------------------------------

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

    @property
    def completion(self) -> float | None:
        return self.completed / self.held if self.held else None

    @property
    def repair_rate(self) -> float | None:
        return self.repaired / (self.repaired + self.unrepaired) if self.repaired + self.unrepaired else None

    @property
    def small(self) -> bool:
        return self.patients < SMALL_NUMBERS


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


def clinic_report(*, clinic: Clinic, filters: ReportFilters) -> ClinicReport:
    """Clinic-level figures over a period (by session date). Flag figures count the stored flags
    therapists saw, on the total alliance scale (declines: on task agreement, the headline scale),
    so one event seen on several scales counts once."""
    episodes = Episode.objects.filter(patient__clinic=clinic).select_related("patient__clinic", "therapist")
    if filters.therapist_id:
        episodes = episodes.filter(therapist_id=filters.therapist_id)
    if filters.treatment:
        episodes = episodes.filter(treatment=filters.treatment)
    in_period = Q(date__gte=filters.start, date__lte=filters.end)
    held = (
        Session.objects.filter(in_period, episode__in=episodes, status=Session.Status.HELD)
        .annotate(done=Exists(Response.objects.filter(session=OuterRef("pk"), rater="patient")))
        .values_list("episode_id", "episode__therapist_id", "date", "done")
    )
    held_rows = list(held)
    active_episodes = list(episodes.filter(pk__in={r[0] for r in held_rows}))
    flags = list(
        Flag.objects.filter(
            episode__in=active_episodes, session__date__gte=filters.start, session__date__lte=filters.end
        )
        .filter(Q(scale="total") | Q(kind="decline", scale="task"))
        .exclude(Q(kind="decline") & ~Q(scale="task"))
        .values_list("episode_id", "episode__therapist_id", "kind")
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
        return TherapistFigures(
            therapist=therapist,
            patients=len({r[0] for r in mine}),
            held=len(mine),
            completed=sum(1 for r in mine if r[3]),
            patients_with_rupture=len({f[0] for f in mine_flags if f[2] == "rupture"}),
            repaired=sum(1 for f in mine_flags if f[2] == "repair"),
            unrepaired=sum(1 for f in mine_flags if f[2] == "unrepaired"),
            declines=sum(1 for f in mine_flags if f[2] == "decline"),
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
    )


# --- Audit trail -------------------------------------------------------------------------------

ACCOUNT_EVENTS = (
    "sign-in",
    "sign-in failed",
    "sign-out",
    "password changed",
    "two-factor added",
    "two-factor reset",
    "two-factor failed",
    "sessions ended",
)


@dataclass(frozen=True)
class AuditFilters:
    kind: str = ""
    who: str = ""
    start: date | None = None
    end: date | None = None


def audit_entries(*, clinic: Clinic, filters: AuditFilters = AuditFilters()) -> QuerySet[LogEntry]:
    """The clinic's audit trail, newest first: every entry that names the clinic (reads, changes,
    exports, erasures, and its staff's sign-in events). Entries are written by django-auditlog
    and monitoring.audit; each names its clinic in ``additional_data``."""
    entries = LogEntry.objects.filter(additional_data__clinic=clinic.pk)
    if filters.kind == "reads":
        entries = entries.filter(action=LogEntry.Action.ACCESS, additional_data__has_key="what")
    elif filters.kind == "changes":
        # Changes recorded by django-auditlog; explicit entries (erasure, sessions ended) carry an event.
        entries = entries.filter(
            action__in=[LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE]
        ).exclude(additional_data__has_key="event")
    elif filters.kind == "sign-ins":
        entries = entries.filter(additional_data__event__in=ACCOUNT_EVENTS)
    elif filters.kind == "exports":
        entries = entries.filter(additional_data__event__in=["export", "audit export"])
    elif filters.kind == "erasures":
        entries = entries.filter(additional_data__event="erasure")
    if filters.who:
        entries = entries.filter(actor_email__icontains=filters.who.strip())
    if filters.start:
        entries = entries.filter(timestamp__date__gte=filters.start)
    if filters.end:
        entries = entries.filter(timestamp__date__lte=filters.end)
    return entries.select_related("content_type").order_by("-timestamp", "-pk")


def audit_describe(entry: LogEntry) -> str:
    """One line a clinic admin can read: the entry's own text, or what changed on which record."""
    if entry.changes_text:
        return str(entry.changes_text)
    verb = {
        LogEntry.Action.CREATE: "Created",
        LogEntry.Action.UPDATE: "Changed",
        LogEntry.Action.DELETE: "Deleted",
    }
    what = entry.content_type.name if entry.content_type_id else "record"
    fields = ", ".join(sorted((entry.changes_dict or {}).keys()))
    text = f"{verb.get(entry.action, 'Recorded')} {what} {entry.object_repr}"
    return f"{text}: {fields}" if fields and entry.action == LogEntry.Action.UPDATE else text
