"""Storing the analysis: clinic estimates, each episode's flags (once, prospectively), the
therapist's notifications, and acknowledgements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode
from monitoring.analytics import AnalysisConfig, analyse
from monitoring.flags.selectors import ATTENTION_WINDOW, analysis_config, clinic_estimate_latest
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import (
    ClinicEstimate,
    EpisodeAnalysis,
    Flag,
    Notification,
)

#: Flags that put a patient on the therapist's attention list as soon as they are raised.
NOTIFY_KINDS = (Flag.Kind.RUPTURE, Flag.Kind.UNREPAIRED, Flag.Kind.DECLINE)


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
)


def clinic_estimate_refresh(*, clinic: Clinic) -> ClinicEstimate:
    """Estimate the clinic-level quantities from all its patient ratings and store them as a new
    row. Stored flags keep pointing at the estimate they were computed with."""
    episode_ids = Episode.objects.filter(patient__clinic=clinic).values_list("pk", flat=True)
    scores = scores_for_episodes(episode_ids=episode_ids)
    now = timezone.now()
    parameters = analyse(scores, AnalysisConfig.preset(clinic.sensitivity)).clinic.stamped(now.isoformat())
    return ClinicEstimate.objects.create(
        clinic=clinic, estimated_at=now, parameters=parameters.to_dict(), patients_used=parameters.n_patients
    )


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
        events = analyse(scores, config).events
        last_session = scores.groupby("patient")["session"].max()
        events_of = dict(tuple(events.groupby("patient")))
        snapshot = analysis_config_snapshot(config)
        for episode in clinic_episodes:
            if episode.pk not in last_session.index:
                continue
            stored[episode.pk] = _flags_store(
                episode=episode,
                events=events_of.get(episode.pk, events.iloc[:0]),
                last_session=int(last_session[episode.pk]),
                estimate=estimate,
                config_snapshot=snapshot,
            )
    return stored


def _flags_store(
    *,
    episode: Episode,
    events: pd.DataFrame,
    last_session: int,
    estimate: ClinicEstimate,
    config_snapshot: dict[str, object],
) -> list[Flag]:
    """Store an episode's events after its watermark as flags, move the watermark, notify."""
    with transaction.atomic():
        state, _ = EpisodeAnalysis.objects.select_for_update().get_or_create(episode=episode)
        sessions = {s.number: s for s in episode.sessions.all()}
        new = events[events["session"] > state.flagged_through]
        flags = [
            Flag(
                episode=episode,
                session=sessions[int(row["session"])],
                scale=str(row["scale"]),
                kind=str(row["kind"]),
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
        # old watermark are exactly the ones this call stored.
        stored = list(
            Flag.objects.filter(episode=episode, session__number__gt=state.flagged_through).select_related(
                "session"
            )
        )
        state.flagged_through = max(state.flagged_through, last_session)
        state.save(update_fields=["flagged_through", "updated_at"])
        # An import or a first analysis stores a whole history at once: only recent events are news.
        recent_from = state.flagged_through - ATTENTION_WINDOW
        Notification.objects.bulk_create(
            (
                Notification(user=episode.therapist, flag=f)
                for f in stored
                if f.kind in NOTIFY_KINDS and f.session.number > recent_from
            ),
            ignore_conflicts=True,
        )
    return stored


def notifications_mark_read(*, user: User, flag_ids: list[int] | None = None) -> int:
    pending = Notification.objects.filter(user=user, read_at=None)
    if flag_ids is not None:
        pending = pending.filter(flag_id__in=flag_ids)
    return pending.update(read_at=timezone.now())


def flag_acknowledge(*, flag: Flag, user: User, acknowledgement: str, note: str = "") -> list[Flag]:
    """Mark an event as discussed with the patient or not relevant, with an optional short note.

    The event is the flag with its siblings of the same kind at the same session on the other
    scales (one rupture usually shows on several). They stay visible and stop counting for the
    caseload's priority. Who and when are kept, and the change is in the audit trail.
    """
    if acknowledgement not in Flag.Acknowledgement.values:
        raise ApplicationError("Choose “discussed with patient” or “not relevant”.")
    note = note.strip()
    if len(note) > 500:
        raise ApplicationError(f"Keep the note to 500 characters (it has {len(note)}).")
    now = timezone.now()
    siblings = list(
        Flag.objects.filter(
            episode_id=flag.episode_id, session_id=flag.session_id, kind=flag.kind, acknowledgement=""
        )
    )
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
