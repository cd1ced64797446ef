"""Reads of the analysis: the clinic's stored reference values, the analysis of episodes with
them, and stored flags with the rule of when a flag still counts for the caseload."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from clinics.models import Clinic, Episode
from clinics.permissions import patients_visible_to
from monitoring.analytics import Analysis, AnalysisConfig, ClinicParameters, analyse
from monitoring.flags.snapshots import SNAPSHOT_FORMAT, EpisodeFrames, Snapshot, snapshot_version
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import (
    ClinicEstimate,
    EpisodeAnalysis,
    Flag,
    Rater,
    Response,
)

#: A flag counts for the caseload's attention list while it is unacknowledged and was raised
#: within this many of the patient's latest sessions; older ones stay listed on the patient page.
#: An unrepaired rupture is the exception: it counts until someone has acknowledged it, because
#: unrepaired, not the rupture itself, carries the outcome risk; so is a persistently low
#: alliance (its absolute signal is raised once per run of low sessions).
ATTENTION_WINDOW = 6


STAYS_UNTIL_ACKNOWLEDGED = frozenset({"unrepaired", "low_alliance"})


def counts_for_attention(
    *, kind: str, session: int, acknowledged: bool, last_held: int, alarm: bool = True
) -> bool:
    """Whether a stored flag puts its patient on the caseload now: an alarm (the analysis's unit
    of alarm; other flags explain), not acknowledged, and recent (an unrepaired rupture counts
    until someone acknowledges it, and so does an alliance that has stayed low)."""
    if not alarm or acknowledged or kind in ("repair", "sudden_gain"):
        return False
    return kind in STAYS_UNTIL_ACKNOWLEDGED or session > last_held - ATTENTION_WINDOW


def clinic_estimate_latest(*, clinic: Clinic) -> ClinicEstimate | None:
    return ClinicEstimate.objects.filter(clinic=clinic).order_by("-estimated_at").first()


def analysis_config(*, clinic: Clinic, estimate: ClinicEstimate | None = None) -> AnalysisConfig:
    """The clinic's false-alarm budget (its sensitivity) with its stored reference values (the
    latest estimate unless one is given) and the thresholds calibrated to that budget in that
    estimate. With no estimate stored yet, analyse() estimates the values from the data it is
    given, uncalibrated."""
    estimate = estimate or clinic_estimate_latest(clinic=clinic)
    parameters = ClinicParameters.from_dict(estimate.parameters) if estimate else None
    return AnalysisConfig.preset(clinic.sensitivity).with_clinic(parameters)


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


def snapshots_for_episodes(*, episodes: Sequence[Episode], with_frames: bool = True) -> dict[int, Snapshot]:
    """Each episode's stored analysis snapshot (monitoring.flags.snapshots), in a constant number
    of queries: the snapshots, the answered sessions, and the clinic's latest estimate.

    A snapshot that is missing or does not include every answered session (its analysis has not
    run yet, or failed) is not used: those episodes are analysed here, as the pages did before
    snapshots, so a page never shows less than the answers. ``with_frames=False`` reads only the
    summaries (the caseload)."""
    if not episodes:
        return {}
    fields = ["episode_id", "version", "analysed_at", "summary", "analysed_sessions"]
    # A snapshot of an older format is not read (its layout may differ): analysed on the read.
    rows = EpisodeAnalysis.objects.filter(episode__in=episodes, version__startswith=f"{SNAPSHOT_FORMAT}:")
    stored = {row["episode_id"]: row for row in rows.values(*fields, *(["frames"] if with_frames else []))}
    answered: dict[int, set[int]] = {}
    for episode_id, number in Response.objects.filter(
        session__episode__in=episodes, rater=Rater.PATIENT, measure="alliance"
    ).values_list("session__episode_id", "session__number"):
        answered.setdefault(episode_id, set()).add(number)
    current: dict[int, str] = {}
    for clinic in {e.patient.clinic_id: e.patient.clinic for e in episodes}.values():
        latest = clinic_estimate_latest(clinic=clinic)
        current[clinic.pk] = snapshot_version(
            estimate_id=latest.pk if latest else None, sensitivity=clinic.sensitivity
        )
    out: dict[int, Snapshot] = {}
    missing = []
    for episode in episodes:
        row = stored.get(episode.pk)
        if row is None or not answered.get(episode.pk, set()) <= set(row["analysed_sessions"]):
            if answered.get(episode.pk):
                missing.append(episode)
            continue
        out[episode.pk] = Snapshot(
            episode_id=episode.pk,
            version=row["version"],
            analysed_at=row["analysed_at"],
            summary=row["summary"],
            frames_json=row.get("frames"),
            current=row["version"] == current[episode.patient.clinic_id],
        )
    for episode_id, analysis in analysis_for_episodes(episodes=missing).items():
        frames = EpisodeFrames.of(analysis, episode_id)
        out[episode_id] = Snapshot(
            episode_id=episode_id,
            version="",
            analysed_at=None,
            summary=frames.summary(),
            frames_json=None,
            current=True,
            live=frames,
        )
    return out


def flags_visible_to(*, user: User | AnonymousUser) -> QuerySet[Flag]:
    return Flag.objects.filter(episode__patient__in=patients_visible_to(user=user))


def flag_get_for_user(*, user: User | AnonymousUser, code: object) -> Flag:
    return get_object_or_404(
        flags_visible_to(user=user).select_related("episode__patient", "session"), code=code
    )


def episodes_stale(*, clinic: Clinic | None = None) -> list[int]:
    """Episodes whose stored analysis is older than their patient's answers: a session with the
    patient's answers that is not among the analysed sessions (``EpisodeAnalysis``), or answers
    and no analysis at all. Normally none: each write schedules its analysis on commit; after a
    queue outage, a killed worker or a failed task, ``manage.py analyse_stale`` catches up."""
    # The responses the analysis reads (scores_for_episodes): the patient's alliance ratings.
    responses = Response.objects.filter(rater=Rater.PATIENT, measure="alliance")
    # A state without a snapshot of the present format (written before snapshots existed, or by
    # an earlier release) counts as not analysed.
    states = EpisodeAnalysis.objects.filter(version__startswith=f"{SNAPSHOT_FORMAT}:")
    if clinic is not None:
        responses = responses.filter(session__episode__patient__clinic=clinic)
        states = states.filter(episode__patient__clinic=clinic)
    answered: dict[int, set[int]] = {}
    for episode_id, number in responses.values_list("session__episode_id", "session__number").iterator(
        chunk_size=10_000
    ):
        answered.setdefault(episode_id, set()).add(number)
    analysed = {
        episode_id: set(sessions)
        for episode_id, sessions in states.values_list("episode_id", "analysed_sessions").iterator(
            chunk_size=10_000
        )
    }
    return sorted(e for e, numbers in answered.items() if not numbers <= analysed.get(e, set()))
