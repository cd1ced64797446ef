"""The queries the reports share: the episodes the filters select, the analysis of a period,
who each episode is about, and the shaping of analysis rows into report rows.

Analysis-based reports (``session_scores``, ``patient_levels``, ``clinic_summary``,
``patient_report``) analyse each episode's patient ratings *up to the end of the period*
(:func:`analysis_for_export`) and then keep the rows of the period (:func:`in_period`).
Every query starts from the clinic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd
from django.db.models import Exists, Model, OuterRef, QuerySet

from clinics.models import Clinic, Episode, Session
from monitoring.analytics import Analysis, analyse
from monitoring.analytics import columns as c
from monitoring.exports.base import DECIMALS, IDENTIFYING, ExportFilters, pseudonym
from monitoring.flags.selectors import analysis_config, snapshots_for_episodes
from monitoring.flags.snapshots import StoredAnalysis
from monitoring.instruments.measures import outcome_instruments, outcome_scores, specs
from monitoring.instruments.scores import scores_for_episodes

_M = TypeVar("_M", bound=Model)


def person_name(first: str, last: str, email: str) -> str:
    """A person's full name, or their email address when the name is empty."""
    return f"{first} {last}".strip() or email


def episodes_for_export(*, clinic: Clinic, filters: ExportFilters) -> QuerySet[Episode]:
    """The clinic's episodes of care the filters select (the period is applied to sessions)."""
    episodes = Episode.objects.filter(patient__clinic=clinic)
    if filters.therapist_id:
        episodes = episodes.filter(therapist_id=filters.therapist_id)
    if filters.treatment:
        episodes = episodes.filter(treatment=filters.treatment)
    if filters.patient_code:
        episodes = episodes.filter(patient__code=filters.patient_code)
    if filters.start or filters.end:
        episodes = episodes.filter(
            Exists(sessions_in_period(Session.objects.filter(episode=OuterRef("pk")), filters))
        )
    return episodes


def sessions_in_period(rows: QuerySet[_M], filters: ExportFilters, prefix: str = "") -> QuerySet[_M]:
    """``rows`` whose session (reached through ``prefix``) is dated within the period."""
    if filters.start:
        rows = rows.filter(**{f"{prefix}date__gte": filters.start})
    if filters.end:
        rows = rows.filter(**{f"{prefix}date__lte": filters.end})
    return rows


def in_period(dates: pd.Series, filters: ExportFilters) -> pd.Series:
    keep = pd.Series(True, index=dates.index)
    if filters.start:
        keep &= dates >= filters.start
    if filters.end:
        keep &= dates <= filters.end
    return keep


def episode_info(
    *, clinic: Clinic, episode_ids: Iterable[int], pseudonymise: bool, key: str = ""
) -> pd.DataFrame:
    """Who each episode is about, indexed by episode id: ``patient`` (label or pseudonym),
    ``external_id``, ``therapist`` (name or pseudonym), ``treatment`` and ``episode_start``."""
    rows = Episode.objects.filter(pk__in=list(episode_ids), patient__clinic=clinic).values_list(
        "pk",
        "patient__code",
        "patient__label",
        "patient__external_id",
        "therapist_id",
        "therapist__first_name",
        "therapist__last_name",
        "therapist__email",
        "treatment",
        "started_on",
    )
    records = []
    for pk, code, label, external_id, therapist_id, first, last, email, treatment, started in rows:
        if pseudonymise:
            patient, external_id = pseudonym(clinic=clinic, kind="patient", value=code, key=key), ""
            therapist = pseudonym(clinic=clinic, kind="therapist", value=therapist_id, key=key)
        else:
            patient, therapist = label, person_name(first, last, email)
        records.append((pk, patient, external_id, therapist, treatment, started))
    return pd.DataFrame.from_records(
        records, columns=["episode", "patient", "external_id", "therapist", "treatment", "episode_start"]
    ).set_index("episode")


def session_dates(episode_ids: Sequence[int]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        list(Session.objects.filter(episode_id__in=episode_ids).values_list("episode_id", "number", "date")),
        columns=["episode", "session", "date"],
    ).astype({"episode": "int64", "session": "int64"})


@dataclass(frozen=True)
class PeriodAnalysis:
    """The analysis of the selected episodes up to the period's end, with session dates."""

    analysis: Analysis | StoredAnalysis | None
    info: pd.DataFrame
    dates: pd.DataFrame  # episode, session, date (every session of the episodes)


def analysis_for_export(*, clinic: Clinic, filters: ExportFilters) -> PeriodAnalysis:
    """The analysis of the selected episodes' patient ratings of sessions up to ``filters.end``.

    Without an end date, their stored snapshots: what the pages show (flags.snapshots). With one,
    one vectorised ``analyse`` of the sessions up to it (a view of the past no snapshot holds),
    with the clinic's stored reference values and sensitivity (``analysis_config``), exactly as
    the snapshots are computed.
    """
    episode_ids = list(episodes_for_export(clinic=clinic, filters=filters).values_list("pk", flat=True))
    info = episode_info(
        clinic=clinic, episode_ids=episode_ids, pseudonymise=filters.pseudonymise, key=filters.pseudonym_key
    )
    dates = session_dates(episode_ids)
    if not filters.end:
        episodes = list(Episode.objects.filter(pk__in=episode_ids).select_related("patient__clinic"))
        snapshots = snapshots_for_episodes(episodes=episodes)
        frames = [f for _, s in sorted(snapshots.items()) if (f := s.frames) is not None]
        return PeriodAnalysis(StoredAnalysis.of(frames) if frames else None, info, dates)
    # No episode selected (a period without sessions): nothing to read. (scores_for_episodes
    # cannot take an empty list: Django refuses to compile the query, EmptyResultSet.)
    scores = scores_for_episodes(episode_ids=episode_ids) if episode_ids else pd.DataFrame()
    if filters.end and not scores.empty:
        dated = scores.merge(
            dates, left_on=["patient", "session"], right_on=["episode", "session"], how="left"
        )
        scores = scores[(dated["date"] <= filters.end).to_numpy()].reset_index(drop=True)
    if scores.empty:
        return PeriodAnalysis(None, info, dates)
    return PeriodAnalysis(analyse(scores, analysis_config(clinic=clinic)), info, dates)


def with_dates(frame: pd.DataFrame, dates: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (analysis rows: ``patient`` is the episode id) with each session's ``date``."""
    keyed = frame.assign(episode=frame[c.PATIENT].astype("int64"), session=frame[c.SESSION].astype("int64"))
    return keyed.drop(columns=[c.PATIENT]).merge(dates, on=["episode", "session"], how="left")


def join_info(
    frame: pd.DataFrame, info: pd.DataFrame, columns: Sequence[str], *, pseudonymise: bool
) -> pd.DataFrame:
    """Put the people first, keep ``columns`` in order, drop identifying columns if asked."""
    joined = frame.join(info, on="episode")
    keep = [name for name in columns if not (pseudonymise and name in IDENTIFYING)]
    out = joined[keep].reset_index(drop=True)
    floats = [name for name in keep if pd.api.types.is_float_dtype(out[name])]
    if floats:
        out[floats] = out[floats].round(DECIMALS)
    for name in keep:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(str)
    return out


def symptom_columns() -> list[str]:
    """The columns of the symptom measures loaded (bundled first): ``phq9``, ``phq9_band``,
    ``gad7``, ``gad7_band``, ... The same for every clinic of an installation, so files of
    different clinics (and of a clinic before and after it chose its measures) line up."""
    return [name for code in outcome_instruments() for name in (code, f"{code}_band")]


def symptoms_by_session(episode_ids: Sequence[int]) -> pd.DataFrame:
    """Each session's symptom totals and severity bands, one row per (``episode``, ``session``)
    answered, with the :func:`symptom_columns`: the total (NaN when too many items are missing or
    the measure was not answered) and its band ("" then)."""
    found = specs(outcome_instruments())
    scores = outcome_scores(episode_ids=episode_ids)
    if scores.empty:
        empty = {"episode": pd.Series(dtype="int64"), "session": pd.Series(dtype="int64")}
        for code in found:
            empty[code] = pd.Series(dtype="float64")
            empty[f"{code}_band"] = pd.Series(dtype=object)
        return pd.DataFrame(empty)
    wide = scores.pivot_table(index=["patient", "session"], columns="measure", values="score", dropna=False)
    wide.columns = [str(name) for name in wide.columns]
    out = pd.DataFrame(index=wide.index)
    for code, spec in found.items():
        values = wide[code] if code in wide.columns else pd.Series(float("nan"), index=wide.index)
        out[code] = values.astype(float)
        out[f"{code}_band"] = values.map(lambda v, spec=spec: spec.band(v) if v == v else "").astype(object)
    out = out.reset_index().rename(columns={"patient": "episode"})
    return out.astype({"episode": "int64", "session": "int64"})
