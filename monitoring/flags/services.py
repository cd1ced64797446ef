"""Storing the analysis: clinic estimates, each episode's flags (once, prospectively), the
therapist's notifications, and acknowledgements."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode
from clinics.validation import check_text
from monitoring.analytics import AnalysisConfig, analyse
from monitoring.analytics.absolute import detect_low_alliance
from monitoring.analytics.calibration import calibrate
from monitoring.analytics.perspectives import (
    FALLBACK_GAP_SD,
    GAP_COLUMNS,
    PERSPECTIVE_GAP,
    gap_spread,
    paired_gaps,
    perspective_events,
    perspective_gaps,
)
from monitoring.flags import events
from monitoring.flags.selectors import (
    ATTENTION_WINDOW,
    analysis_config,
    analysis_for_episodes,
    clinic_estimate_latest,
    episodes_stale,
    snapshots_for_episodes,
)
from monitoring.flags.snapshots import (
    SNAPSHOT_FORMAT,
    EpisodeFrames,
    frames_by_episode,
    frames_equal,
    snapshot_version,
)
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import (
    ClinicEstimate,
    EpisodeAnalysis,
    Flag,
    Notification,
    Rater,
)

#: Alarms that notify the therapist as soon as they are raised (a sudden loss comes with a
#: rupture or a decline of its own, so it is on the caseload without a notification of its own).
NOTIFY_KINDS = (
    Flag.Kind.RUPTURE,
    Flag.Kind.UNREPAIRED,
    Flag.Kind.DECLINE,
    Flag.Kind.LOW_ALLIANCE,
    Flag.Kind.PERSPECTIVE_GAP,
)

#: The two-perspectives rule's false-alarm rate per paired session, as a share of the clinic's
#: budget (docs/methods.md 4.10): a fifth, 0.2 per 100 paired sessions at the default budget.
PERSPECTIVE_SHARE_OF_BUDGET = 0.2

logger = logging.getLogger(__name__)


#: Event columns kept with each flag as "the numbers behind it".
_DETAIL_COLUMNS = (
    "rule",
    "t",
    "score",
    "baseline",
    "n_baseline",
    "s_used",
    "k",
    "sem",
    "rc",
    "pooled_sd",
    "rupture_session",
    "from_session",
    "to_session",
    "cusum",
    "slope",
    "mean_before",
    "mean_after",
    "sd_window",
    "t_crit",
    "cutoff",
    "run_length",
    "therapist_score",
    "gap",
    "usual_gap",
)


def clinic_estimate_refresh(*, clinic: Clinic) -> ClinicEstimate:
    """Estimate the clinic-level quantities from all its patient ratings, calibrate its thresholds
    to its false-alarm budget, and store both as a new row. Stored flags keep pointing at the
    estimate they were computed with.

    A young clinic leans on a prior (monitoring.analytics.clinic.estimate_scale): the pooled
    values of the deployment's other clinics where they have enough patients, else the
    configured defaults. The calibration simulates ``BORDIN_CALIBRATION_PATIENTS`` steady
    patients of this clinic (about a second for the default 1,500).
    """
    episode_ids = Episode.objects.filter(patient__clinic=clinic).values_list("pk", flat=True)
    scores = scores_for_episodes(episode_ids=episode_ids)
    now = timezone.now()
    config = AnalysisConfig.preset(clinic.sensitivity, **deployment_prior(excluding=clinic))
    parameters = analyse(scores, config).clinic.stamped(now.isoformat())
    calibration = calibrate(parameters, config, patients=settings.BORDIN_CALIBRATION_PATIENTS)
    parameters = parameters.calibrated(calibration.to_dict())
    therapist = (
        scores_for_episodes(episode_ids=episode_ids, rater=Rater.THERAPIST) if len(scores) else pd.DataFrame()
    )
    gap_sd = gap_spread(paired_gaps(scores, therapist)) if len(therapist) else FALLBACK_GAP_SD
    return ClinicEstimate.objects.create(
        clinic=clinic,
        estimated_at=now,
        parameters=_json_safe({**parameters.to_dict(), "perspective_gap_sd": gap_sd}),
        patients_used=parameters.n_patients,
    )


def _json_safe(value: Any) -> Any:
    """NaN (a share of no patients, in a clinic whose last patient was erased) as null: JSON
    columns refuse NaN. ClinicParameters.from_dict reads it back as NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def deployment_prior(*, excluding: Clinic) -> dict[str, float]:
    """Prior values for a young clinic from the other clinics of this deployment: the
    patient-weighted mean of their latest estimates of the total scale (those that stood on
    their own data), as ``AnalysisConfig`` prior fields; empty if there are none."""
    rows = []
    for clinic_id in Clinic.objects.exclude(pk=excluding.pk).values_list("pk", flat=True):
        latest = ClinicEstimate.objects.filter(clinic_id=clinic_id).order_by("-estimated_at").first()
        if latest is None:
            continue
        total = latest.parameters.get("scales", {}).get("total", {})
        if total and not total.get("used_priors", True):
            rows.append(total)
    if not rows:
        return {}
    weight = np.array([float(r.get("n_patients_min_sessions", 1)) for r in rows])

    def mean(key: str) -> float:
        return float(np.average([float(r[key]) for r in rows], weights=weight))

    return {
        "prior_clinic_mean": mean("clinic_mean"),
        "prior_tau2": mean("tau2"),
        "prior_sigma2": mean("sigma2"),
    }


def clinic_estimate_current(*, clinic: Clinic) -> ClinicEstimate:
    return clinic_estimate_latest(clinic=clinic) or clinic_estimate_refresh(clinic=clinic)


def analysis_config_snapshot(config: AnalysisConfig) -> dict[str, object]:
    """The rule parameters as JSON, stored with each flag (the clinic values are its estimate)."""
    snapshot: dict[str, object] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "clinic":
            continue
        snapshot[f.name] = dict(value) if f.name == "scale_reliability" else _jsonable(value)
    return snapshot


def _jsonable(value: object) -> object:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def episode_flags_refresh(*, episode_id: int) -> list[Flag]:
    """Recompute one episode's analysis and store the flags of sessions not analysed before
    (see :func:`episodes_flags_refresh`)."""
    return episodes_flags_refresh(episode_ids=[episode_id]).get(episode_id, [])


def episodes_flags_refresh(*, episode_ids: Sequence[int]) -> dict[int, list[Flag]]:
    """Analyse episodes and store the flags of their sessions not analysed before.

    One vectorised analysis per clinic (with its current estimate), then each episode's new flags
    are stored under a lock on its watermark. Idempotent: running it twice stores nothing the
    second time. Returns the new flags by episode; a new rupture, unrepaired rupture or decline
    also becomes a notification for the therapist.
    """
    episodes = list(Episode.objects.filter(pk__in=list(episode_ids)).select_related("patient__clinic"))
    by_clinic: dict[int, list[Episode]] = {}
    for episode in episodes:
        by_clinic.setdefault(episode.patient.clinic_id, []).append(episode)
    stored: dict[int, list[Flag]] = {}
    for clinic_episodes in by_clinic.values():
        clinic = clinic_episodes[0].patient.clinic
        estimate = clinic_estimate_current(clinic=clinic)
        config = analysis_config(clinic=clinic, estimate=estimate)
        scores = scores_for_episodes(episode_ids=[e.pk for e in clinic_episodes])
        if scores.empty:
            continue
        analysis = analyse(scores, config)
        # The absolute signal beside the relative rules (docs/methods.md 4.9): stored the same way.
        low = detect_low_alliance(
            analysis.sessions, cutoff=clinic.low_alliance_cutoff, run=clinic.low_alliance_sessions
        )
        # Two perspectives (docs/methods.md 4.10): sessions the therapist rated well above the patient.
        gaps = perspective_judgements(clinic=clinic, estimate=estimate, scores=scores)
        events = pd.concat(
            [analysis.events.astype({"kind": str, "scale": str}), low, perspective_events(gaps)],
            ignore_index=True,
        )
        pairs_of = gaps.groupby("patient")["session"].apply(list) if len(gaps) else pd.Series(dtype=object)
        sessions_of = scores.groupby("patient")["session"].apply(list)
        events_of = dict(tuple(events.groupby("patient", observed=True)))
        frames_of = frames_by_episode(analysis)
        snapshot = analysis_config_snapshot(config)
        version = snapshot_version(estimate_id=estimate.pk, sensitivity=clinic.sensitivity)
        for episode in clinic_episodes:
            if episode.pk not in sessions_of.index:
                continue
            stored[episode.pk] = _flags_store(
                episode=episode,
                events=events_of.get(episode.pk, events.iloc[:0]),
                sessions=[int(s) for s in sessions_of[episode.pk]],
                pairs=[int(s) for s in pairs_of.get(episode.pk, [])],
                estimate=estimate,
                config_snapshot=snapshot,
                frames=frames_of[episode.pk],
                version=version,
            )
    return stored


def perspective_judgements(*, clinic: Clinic, estimate: ClinicEstimate, scores: pd.DataFrame) -> pd.DataFrame:
    """Every session both the patient and the therapist rated, of the episodes in ``scores``,
    judged by the two-perspectives rule (monitoring.analytics.perspectives) with the clinic's gap
    spread from its estimate and a false-alarm rate of a fifth of the clinic's budget."""
    therapist = scores_for_episodes(episode_ids=scores["patient"].unique().tolist(), rater=Rater.THERAPIST)
    if therapist.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    prior_sd = float(estimate.parameters.get("perspective_gap_sd") or FALLBACK_GAP_SD)
    alpha = clinic.false_alarm_budget / 100 * PERSPECTIVE_SHARE_OF_BUDGET
    return perspective_gaps(paired_gaps(scores, therapist), prior_sd=prior_sd, alpha=alpha)


def clinic_snapshots_refresh(*, clinic: Clinic, batch: int = 500) -> int:
    """Re-snapshot every episode of the clinic that has answers, with its present parameters
    (after a new estimate or a change of sensitivity; in the background task that made it).
    Stores no flag that was not due anyway. Returns the number of episodes analysed."""
    episode_ids = list(
        EpisodeAnalysis.objects.filter(episode__patient__clinic=clinic).values_list("episode_id", flat=True)
    )
    for start in range(0, len(episode_ids), batch):
        episodes_flags_refresh(episode_ids=episode_ids[start : start + batch])
    return len(episode_ids)


@dataclass(frozen=True)
class SnapshotCheck:
    """What :func:`snapshots_check` found, as lists of episode ids."""

    checked: int
    missing: list[int]  # answers, and no snapshot that includes them all
    outdated: list[int]  # computed with earlier clinic parameters (a background refresh is due)
    differing: list[int]  # current parameters, and not what a fresh analysis gives

    @property
    def ok(self) -> bool:
        return not (self.missing or self.differing)


def snapshots_check(*, clinic: Clinic | None = None, repair: bool = False) -> SnapshotCheck:
    """Compare every stored snapshot with a fresh analysis of its episode's answers (``manage.py
    snapshots_check``). With ``repair``, episodes found missing, outdated or differing are
    re-analysed (which stores any flags that were due, and the snapshot)."""
    clinics = [clinic] if clinic is not None else list(Clinic.objects.all())
    checked, missing, outdated, differing = 0, [], [], []
    for each in clinics:
        episodes = list(
            Episode.objects.filter(
                patient__clinic=each,
                sessions__responses__rater="patient",
                sessions__responses__measure="alliance",
            )
            .distinct()
            .select_related("patient__clinic")
        )
        if not episodes:
            continue
        checked += len(episodes)
        stored = snapshots_for_episodes(episodes=episodes)
        fresh = analysis_for_episodes(episodes=episodes)
        for episode in episodes:
            snapshot = stored.get(episode.pk)
            if snapshot is None or snapshot.live is not None:
                missing.append(episode.pk)
            elif not snapshot.current:
                outdated.append(episode.pk)
            elif snapshot.frames is None or frames_equal(
                snapshot.frames, EpisodeFrames.of(fresh[episode.pk], episode.pk)
            ):
                differing.append(episode.pk)
    if repair:
        episodes_flags_refresh(episode_ids=missing + outdated + differing)
    return SnapshotCheck(checked=checked, missing=missing, outdated=outdated, differing=differing)


@dataclass(frozen=True)
class StaleSweep:
    """What :func:`episodes_stale_analyse` did: episodes found stale, flags stored, and the
    episodes still stale afterwards (new answers since, or an analysis that failed)."""

    found: int
    flags: int
    failed: list[int]
    left: int


def episodes_stale_analyse(*, clinic: Clinic | None = None, batch: int = 200) -> StaleSweep:
    """Analyse every episode whose stored analysis is older than its patient's answers
    (``flags.selectors.episodes_stale``): the catch-up after a queue outage, a killed worker or a
    failed task. It runs here, not through the task queue (which may be what failed), in batches
    of ``batch`` episodes; a batch that fails is retried episode by episode, and an episode that
    still fails is logged and left for the next sweep. Idempotent: storing flags is
    (``episodes_flags_refresh``), and a second sweep finds nothing to do.
    """
    stale = episodes_stale(clinic=clinic)
    flags, failed = 0, []
    for start in range(0, len(stale), batch):
        chunk = stale[start : start + batch]
        try:
            stored = episodes_flags_refresh(episode_ids=chunk)
        except Exception:
            logger.warning("analysis of %d stale episodes failed; retrying one by one", len(chunk))
            stored = {}
            for episode_id in chunk:
                try:
                    stored.update(episodes_flags_refresh(episode_ids=[episode_id]))
                except Exception:
                    logger.exception(
                        "analysis of stale episode %s failed; the next sweep retries it", episode_id
                    )
                    failed.append(episode_id)
        flags += sum(len(f) for f in stored.values())
    left = len(episodes_stale(clinic=clinic)) if stale else 0
    return StaleSweep(found=len(stale), flags=flags, failed=failed, left=left)


def _flags_store(
    *,
    episode: Episode,
    events: pd.DataFrame,
    sessions: list[int],
    estimate: ClinicEstimate,
    config_snapshot: dict[str, object],
    frames: EpisodeFrames,
    version: str,
    pairs: Sequence[int] = (),
) -> list[Flag]:
    """Store an episode's new events as flags, move the watermark, notify.

    New events are those at sessions after the watermark (``flagged_through``), and those at a
    session whose answers arrived late (a paper form for an earlier session: not in the sessions
    the last analysis included). Flags already stored are never changed: the table's unique key
    (episode, session, scale, kind) keeps them, so what a later session's flag said when it was
    raised stays as it was, even if the late answers would now judge that session differently.
    """
    with transaction.atomic():
        state, _ = EpisodeAnalysis.objects.select_for_update().get_or_create(episode=episode)
        newest = _snapshot_is_newest(state=state, sessions=sessions, estimate=estimate)
        numbers = {s.number: s for s in episode.sessions.all()}
        late = (
            set(sessions) - set(state.analysed_sessions) - {s for s in sessions if s > state.flagged_through}
        )
        fresh = (events["session"] > state.flagged_through) | events["session"].isin(late)
        # The two-perspectives rule judges each session both rated once, whenever its second
        # rating arrives (often the therapist's, after the patient's form was analysed).
        new_pairs = set(pairs) - set(state.analysed_pairs)
        perspective = events["kind"] == PERSPECTIVE_GAP
        fresh = (fresh & ~perspective) | (perspective & events["session"].isin(new_pairs))
        new = events[fresh]
        flags = [
            Flag(
                episode=episode,
                session=numbers[int(row["session"])],
                scale=str(row["scale"]),
                kind=str(row["kind"]),
                alarm=bool(row["alarm"]),
                magnitude=float(row["magnitude"]),
                threshold=None if pd.isna(row["threshold"]) else float(row["threshold"]),
                explanation=str(row["explanation"]),
                detail={c: _jsonable(row[c]) for c in _DETAIL_COLUMNS if c in row},
                config=config_snapshot,
                estimate=estimate,
            )
            for row in new.to_dict("records")
        ]
        Flag.objects.bulk_create(flags, ignore_conflicts=True)
        # The lock on the state row serialises refreshes of one episode, so the flags after the
        # old watermark (and at late sessions) are exactly the ones this call stored.
        stored = list(
            Flag.objects.filter(episode=episode)
            .filter(
                Q(session__number__gt=state.flagged_through)
                | Q(session__number__in=late)
                | Q(kind=PERSPECTIVE_GAP, session__number__in=new_pairs)
            )
            .select_related("session")
        )
        state.flagged_through = max(state.flagged_through, max(sessions))
        state.analysed_sessions = sorted(set(state.analysed_sessions) | set(sessions))
        state.analysed_pairs = sorted(set(state.analysed_pairs) | new_pairs)
        # The snapshot the pages read, written with the flags it goes with; unless a run that
        # started later (more answers, or a newer estimate) has already written one under this
        # lock: two analyses of one episode can run at once (a form and the therapist's rating).
        if newest:
            state.version = version
            state.analysed_at = timezone.now()
            state.frames = frames.dump()
            state.summary = frames.summary()
        state.save(
            update_fields=[
                "flagged_through",
                "analysed_sessions",
                "analysed_pairs",
                "updated_at",
                "version",
                "analysed_at",
                "frames",
                "summary",
            ]
        )
        # An import or a first analysis stores a whole history at once: only recent events are news.
        recent_from = state.flagged_through - ATTENTION_WINDOW
        Notification.objects.bulk_create(
            (
                Notification(user=episode.therapist, flag=f)
                for f in stored
                if f.alarm and f.kind in NOTIFY_KINDS and f.session.number > recent_from
            ),
            ignore_conflicts=True,
        )
    return stored


def _snapshot_is_newest(*, state: EpisodeAnalysis, sessions: Sequence[int], estimate: ClinicEstimate) -> bool:
    """Whether this run's snapshot is at least as new as the stored one: it includes every session
    an earlier run analysed, and its clinic estimate is not older than the stored snapshot's."""
    if set(state.analysed_sessions) - set(sessions):
        return False
    stored = state.version.split(":")
    current_format = len(stored) == 3 and stored[0] == str(SNAPSHOT_FORMAT)
    return not (current_format and stored[1].isdigit() and int(stored[1]) > estimate.pk)


def notifications_mark_read(*, user: User, flag_ids: list[int] | None = None) -> int:
    pending = Notification.objects.filter(user=user, read_at=None)
    if flag_ids is not None:
        pending = pending.filter(flag_id__in=flag_ids)
    return pending.update(read_at=timezone.now())


def flag_acknowledge(*, flag: Flag, user: User, acknowledgement: str, note: str = "") -> list[Flag]:
    """Mark an event as discussed with the patient or not relevant, with an optional short note.

    The event is the flag's whole story (``monitoring.flags.events``): a rupture on every scale
    that showed it, with its sudden loss, its repair or unrepaired rupture and the decline it set
    off; or a flag kind at a session with its siblings on the other scales. Its flags not yet
    acknowledged are: they stay visible and stop counting for the caseload's priority. Who and
    when are kept, and each change is in the audit trail.
    """
    if acknowledgement not in Flag.Acknowledgement.values:
        raise ApplicationError("Choose “discussed with patient” or “not relevant”.")
    note = note.strip()
    if len(note) > 500:
        raise ApplicationError(f"Keep the note to 500 characters (it has {len(note)}).")
    check_text(note, what="The note", max_length=500, multiline=True)
    now = timezone.now()
    siblings = [f for f in _event_flags(flag) if not f.acknowledgement]
    for sibling in siblings:
        sibling.acknowledgement = acknowledgement
        sibling.acknowledged_note = note
        sibling.acknowledged_at = now
        sibling.acknowledged_by = user
        # save() one by one, not update(): each change goes into the audit trail.
        sibling.save(
            update_fields=["acknowledgement", "acknowledged_note", "acknowledged_at", "acknowledged_by"]
        )
    Notification.objects.filter(flag__in=siblings, read_at=None).update(read_at=now)
    return siblings


def flag_unacknowledge(*, flag: Flag, user: User) -> list[Flag]:
    """Undo an acknowledgement: the event (the flag's whole story, as :func:`flag_acknowledge`
    acknowledges it) is open again and counts for the caseload as before (if still recent). Each
    change is in the audit trail, with who undid it; the notifications stay read. Returns the
    flags reopened, empty if the event was not acknowledged."""
    siblings = [f for f in _event_flags(flag) if f.acknowledgement]
    for sibling in siblings:
        sibling.acknowledgement = ""
        sibling.acknowledged_note = ""
        sibling.acknowledged_at = None
        sibling.acknowledged_by = None
        # save() one by one, not update(): each change goes into the audit trail (with the actor).
        sibling.save(
            update_fields=["acknowledgement", "acknowledged_note", "acknowledged_at", "acknowledged_by"]
        )
    return siblings


def _event_flags(flag: Flag) -> list[Flag]:
    """The flags of the event the flag belongs to (``monitoring.flags.events``)."""
    episode_flags = list(Flag.objects.filter(episode_id=flag.episode_id).select_related("session"))
    return events.event_of(flag, episode_flags).flags
