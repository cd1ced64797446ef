"""Exports: one exporter object per report, serving the admin page, the API and the command line.

As in pretix, a report is an object in the registry ``EXPORTS`` with an ``identifier``, a
``verbose_name``, a ``description``, the ``formats`` it supports and a ``frame(clinic=...,
filters=...)`` method that returns the report as a DataFrame (``item_answers``, which can hold
millions of rows, returns an iterator of DataFrame chunks instead). One renderer, :func:`render`,
turns any exporter's frame into CSV, XLSX, PDF or a FHIR R4 bundle, so a format is written once
and every report gets it. The admin page, the API, background jobs and ``manage.py export_report``
all go through ``monitoring.exports.services``, which checks access and writes the audit entry.

Three rules hold for every report (docs/exports.md has the details):

- **Clinic scope.** Every query starts from the clinic; nothing from another clinic can appear.
- **Formula injection.** Text cells of CSV and XLSX files that start with ``= + - @``, a tab or a
  carriage return get a leading apostrophe (OWASP "CSV injection"); numbers stay numbers.
- **Pseudonymisation.** With ``filters.pseudonymise`` patients (and therapists) are replaced by a
  keyed hash, stable across exports of the same clinic, and labels, external ids, names and
  free-text notes are left out. Dates are kept: see docs/exports.md for why, and what that means.

Analysis-based reports (``session_scores``, ``patient_levels``, ``clinic_summary``,
``patient_report``) analyse each episode's patient ratings *up to the end of the period*, with
the clinic's stored reference values, and then keep the rows of the period. Nothing after the
period's end influences a figure, and the flag rules are prospective, so a report for a past
period shows what the analysis said then.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, NamedTuple, TypeAlias, TypeVar

import numpy as np
import pandas as pd
from django.db.models import Count, Exists, Model, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Patient, Session
from monitoring.analytics import Analysis, analyse
from monitoring.analytics import columns as c
from monitoring.flags import wording
from monitoring.flags.selectors import analysis_config
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import Answer, Flag, Invitation, Rater, Response

# --- Formats ------------------------------------------------------------------------------------

CSV, XLSX, PDF, FHIR = "csv", "xlsx", "pdf", "fhir"
FORMATS: tuple[str, ...] = (CSV, XLSX, PDF, FHIR)
CONTENT_TYPES: Mapping[str, str] = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    PDF: "application/pdf",
    FHIR: "application/fhir+json",
}
EXTENSIONS: Mapping[str, str] = {CSV: "csv", XLSX: "xlsx", PDF: "pdf", FHIR: "json"}
FORMAT_NAMES: Mapping[str, str] = {
    CSV: "CSV",
    XLSX: "Excel (XLSX)",
    PDF: "PDF report",
    FHIR: "FHIR R4 bundle (JSON)",
}

#: Rows per chunk of a streamed export: large enough that per-chunk overhead vanishes, small
#: enough that a chunk is a few megabytes.
CHUNK_ROWS = 20_000
#: Excel's limit is 1,048,576 rows per sheet including the header; longer exports go on.
XLSX_MAX_ROWS = 1_048_575
#: Analysis-based figures are rounded to this many decimals: readable, and far finer than the
#: 1-5 answer scale.
DECIMALS = 4


# --- Formula-injection guard ---------------------------------------------------------------------

#: OWASP CSV injection: a cell starting with one of these may be run as a formula by a spreadsheet.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: object) -> object:
    """``value`` with a leading apostrophe if it is text a spreadsheet could run as a formula.

    Only text is changed: a negative number is a number, not a formula, and stays one.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def guard_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell passed through :func:`guard_cell` (vectorised)."""
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)
        is_text = column.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
        if not is_text.any():
            continue
        risky = is_text & column.where(is_text, "").astype(str).str.startswith(FORMULA_PREFIXES)
        if risky.any():
            column = column.astype(object)
            column[risky] = "'" + column[risky].astype(str)
        out[name] = column
    return out


# --- Filters and pseudonyms ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    """What an export covers. Every field narrows it; the defaults export the whole clinic.

    ``start``/``end`` bound the *session date* (both inclusive). ``therapist_id`` and
    ``treatment`` select episodes of care by their therapist and treatment. ``patient_code``
    (the patient's opaque code) narrows any report to one patient and is required by the
    one-patient PDF report. ``pseudonymise`` gives the research export.
    """

    start: date | None = None
    end: date | None = None
    therapist_id: int | None = None
    treatment: str = ""
    patient_code: str = ""
    pseudonymise: bool = False

    def __post_init__(self) -> None:
        # Dates may arrive as ISO text (a form, the API, call_command); store them as dates.
        for name in ("start", "end"):
            object.__setattr__(self, name, _day(getattr(self, name)))
        if self.start and self.end and self.start > self.end:
            raise ApplicationError("The period starts after it ends: check the dates.")
        if self.treatment and self.treatment not in Episode.Treatment.values:
            raise ApplicationError(f"Unknown treatment '{self.treatment}'.")
        if self.patient_code:
            try:
                uuid.UUID(str(self.patient_code))
            except ValueError as exc:
                raise ApplicationError("That is not a patient code.") from exc

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat() if self.end else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportFilters:
        therapist = data.get("therapist_id")
        return cls(
            start=_day(data.get("start")),
            end=_day(data.get("end")),
            therapist_id=int(str(therapist)) if therapist not in (None, "") else None,
            treatment=str(data.get("treatment") or ""),
            patient_code=str(data.get("patient_code") or ""),
            pseudonymise=bool(data.get("pseudonymise")),
        )

    def describe(self) -> list[str]:
        """The filters in words, for report headers (no names: therapists are named by the caller)."""
        words = []
        if self.start or self.end:
            words.append(
                f"Sessions {'from ' + self.start.isoformat() if self.start else 'up'}"
                f"{' to ' + self.end.isoformat() if self.end else ' to date'}"
            )
        if self.treatment:
            words.append(f"Treatment: {Episode.Treatment(self.treatment).label}")
        if self.pseudonymise:
            words.append("Pseudonymised")
        return words


def _day(value: object) -> date | None:
    if not value:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ApplicationError(f"'{value}' is not a date in the form YYYY-MM-DD.") from exc


def pseudonym(*, clinic: Clinic, kind: str, value: object) -> str:
    """A keyed hash standing in for a patient (or therapist) in research exports.

    HMAC-SHA256 under a key derived from SECRET_KEY with a per-clinic salt, so the same patient
    gets the same pseudonym in every export of the clinic (files can be joined), the same
    patient code gives unrelated pseudonyms in two clinics, and nobody without SECRET_KEY can
    recompute or reverse it. 16 hex digits (64 bits) make a collision within a clinic
    practically impossible. Rotating SECRET_KEY changes every pseudonym.
    """
    key_salt = f"bordin.exports.pseudonym.{kind}.{clinic.code}"
    return salted_hmac(key_salt, str(value), algorithm="sha256").hexdigest()[:16]


def _person_name(first: str, last: str, email: str) -> str:
    return f"{first} {last}".strip() or email


# --- Shared queries --------------------------------------------------------------------------------


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
            Exists(_sessions_in_period(Session.objects.filter(episode=OuterRef("pk")), filters))
        )
    return episodes


def _sessions_in_period(rows: QuerySet[_M], filters: ExportFilters, prefix: str = "") -> QuerySet[_M]:
    """``rows`` whose session (reached through ``prefix``) is dated within the period."""
    if filters.start:
        rows = rows.filter(**{f"{prefix}date__gte": filters.start})
    if filters.end:
        rows = rows.filter(**{f"{prefix}date__lte": filters.end})
    return rows


def _in_period(dates: pd.Series, filters: ExportFilters) -> pd.Series:
    keep = pd.Series(True, index=dates.index)
    if filters.start:
        keep &= dates >= filters.start
    if filters.end:
        keep &= dates <= filters.end
    return keep


_M = TypeVar("_M", bound=Model)

#: Columns that name or identify a person; left out of pseudonymised exports.
IDENTIFYING = ("external_id", "acknowledged_by", "acknowledged_note")


def episode_info(*, clinic: Clinic, episode_ids: Iterable[int], pseudonymise: bool) -> pd.DataFrame:
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
            patient, external_id = pseudonym(clinic=clinic, kind="patient", value=code), ""
            therapist = pseudonym(clinic=clinic, kind="therapist", value=therapist_id)
        else:
            patient, therapist = label, _person_name(first, last, email)
        records.append((pk, patient, external_id, therapist, treatment, started))
    return pd.DataFrame.from_records(
        records, columns=["episode", "patient", "external_id", "therapist", "treatment", "episode_start"]
    ).set_index("episode")


def _session_dates(episode_ids: Sequence[int]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        list(Session.objects.filter(episode_id__in=episode_ids).values_list("episode_id", "number", "date")),
        columns=["episode", "session", "date"],
    ).astype({"episode": "int64", "session": "int64"})


@dataclass(frozen=True)
class PeriodAnalysis:
    """The analysis of the selected episodes up to the period's end, with session dates."""

    analysis: Analysis | None
    info: pd.DataFrame
    dates: pd.DataFrame  # episode, session, date (every session of the episodes)


def analysis_for_export(*, clinic: Clinic, filters: ExportFilters) -> PeriodAnalysis:
    """Analyse the selected episodes' patient ratings of sessions up to ``filters.end``.

    One vectorised ``analyse`` over every selected episode with the clinic's stored reference
    values and sensitivity (``analysis_config``), exactly as the dashboards do.
    """
    episode_ids = list(episodes_for_export(clinic=clinic, filters=filters).values_list("pk", flat=True))
    info = episode_info(clinic=clinic, episode_ids=episode_ids, pseudonymise=filters.pseudonymise)
    dates = _session_dates(episode_ids)
    scores = scores_for_episodes(episode_ids=episode_ids)
    if filters.end and not scores.empty:
        dated = scores.merge(
            dates, left_on=["patient", "session"], right_on=["episode", "session"], how="left"
        )
        scores = scores[(dated["date"] <= filters.end).to_numpy()].reset_index(drop=True)
    if scores.empty:
        return PeriodAnalysis(None, info, dates)
    return PeriodAnalysis(analyse(scores, analysis_config(clinic=clinic)), info, dates)


def _with_dates(frame: pd.DataFrame, dates: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (analysis rows: ``patient`` is the episode id) with each session's ``date``."""
    keyed = frame.assign(episode=frame[c.PATIENT].astype("int64"), session=frame[c.SESSION].astype("int64"))
    return keyed.drop(columns=[c.PATIENT]).merge(dates, on=["episode", "session"], how="left")


def _join_info(
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


# --- Exporters ----------------------------------------------------------------------------------


FrameOrChunks: TypeAlias = pd.DataFrame | Iterator[pd.DataFrame]


class Exporter:
    """One report. Subclasses set the class attributes and implement :meth:`frame`."""

    identifier: ClassVar[str]
    verbose_name: ClassVar[str]
    description: ClassVar[str]
    formats: ClassVar[tuple[str, ...]] = (CSV, XLSX)
    #: Column order of the frame (identifying columns are dropped when pseudonymised).
    columns: ClassVar[tuple[str, ...]] = ()
    #: True when :meth:`frame` returns an iterator of chunks rather than one DataFrame.
    streaming: ClassVar[bool] = False
    #: True for one-patient reports: ``filters.patient_code`` is required.
    needs_patient: ClassVar[bool] = False
    #: PDF template under templates/monitoring/pdf/, for exporters that offer PDF.
    pdf_template: ClassVar[str] = "exports/pdf/table_report.html"

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> FrameOrChunks:
        raise NotImplementedError

    def count(self, *, clinic: Clinic, filters: ExportFilters) -> int | None:
        """The number of rows, where it is cheap to know in advance (progress of big exports)."""
        return None

    def output_columns(self, *, pseudonymise: bool) -> list[str]:
        return [name for name in self.columns if not (pseudonymise and name in IDENTIFYING)]

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        """Template context of the PDF; the default is a titled table of the frame."""
        return {"table": _table(frame)}

    def filename(self, *, clinic: Clinic, filters: ExportFilters, fmt: str) -> str:
        stamp = timezone.localdate().isoformat()
        parts = [clinic.slug, self.identifier.replace("_", "-"), stamp]
        if filters.pseudonymise:
            parts.insert(2, "pseudonymised")
        return "-".join(parts) + "." + EXTENSIONS[fmt]


class SessionScores(Exporter):
    identifier = "session_scores"
    verbose_name = "Session scores"
    description = (
        "One row per patient, session and scale: the score, the patient's usual level, the "
        "session's deviation from it (state and z) and the baseline the flag rules compared with."
    )
    columns = (
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "session",
        "date",
        "scale",
        c.T,
        c.SCORE,
        c.LEVEL,
        c.STATE,
        c.Z,
        c.BASELINE,
        c.N_BASELINE,
        c.S_USED,
        c.IN_RUPTURE,
    )

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        if period.analysis is None:
            return _empty(self.output_columns(pseudonymise=filters.pseudonymise))
        rows = _with_dates(period.analysis.sessions, period.dates)
        rows = rows[_in_period(rows["date"], filters)]
        rows = rows.sort_values(["episode", "session", "scale"], kind="stable")
        return _join_info(rows, period.info, self.columns, pseudonymise=filters.pseudonymise)


class ItemAnswers(Exporter):
    """Streamed: a clinic's answers are read in chunks straight from a database cursor (a
    server-side cursor on PostgreSQL), so memory stays flat however many there are."""

    identifier = "item_answers"
    verbose_name = "Item answers"
    description = (
        "Every patient-rated answer, one row per item, in exactly the long layout the CSV import "
        "reads (patient, external_id, session, date, item, value), so an export can be imported "
        "again. Also as a FHIR R4 bundle of QuestionnaireResponses for the health record."
    )
    formats = (CSV, XLSX, FHIR)
    columns = ("patient", "external_id", "session", "date", "item", "value")
    streaming = True

    def answers(self, *, clinic: Clinic, filters: ExportFilters) -> QuerySet[Answer]:
        episodes = episodes_for_export(clinic=clinic, filters=filters)
        answers = Answer.objects.filter(
            response__rater=Rater.PATIENT, response__session__episode__in=episodes.values("pk")
        )
        return _sessions_in_period(answers, filters, prefix="response__session__")

    def count(self, *, clinic: Clinic, filters: ExportFilters) -> int:
        return self.answers(clinic=clinic, filters=filters).count()

    def frame(
        self, *, clinic: Clinic, filters: ExportFilters, chunk_rows: int | None = None
    ) -> Iterator[pd.DataFrame]:
        chunk_rows = chunk_rows or CHUNK_ROWS
        # The people are looked up once per patient (and guarded there, once); the answer rows
        # carry only numbers and dates.
        patients = Patient.objects.filter(clinic=clinic).values_list("pk", "code", "label", "external_id")
        if filters.pseudonymise:
            who = {
                pk: (pseudonym(clinic=clinic, kind="patient", value=code), "") for pk, code, _, _ in patients
            }
        else:
            who = {pk: (label, external_id) for pk, _, label, external_id in patients}
        rows = (
            self.answers(clinic=clinic, filters=filters)
            .order_by(
                "response__session__episode__patient_id",
                "response__session__episode__started_on",
                "response__session__number",
                "item__number",
            )
            .values_list(
                "response__session__episode__patient_id",
                "response__session__number",
                "response__session__date",
                "item__number",
                "value",
            )
            .iterator(chunk_size=chunk_rows)
        )
        label_of = {pk: names[0] for pk, names in who.items()}
        external_of = {pk: names[1] for pk, names in who.items()}
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            if not chunk:
                return
            frame = pd.DataFrame.from_records(
                chunk, columns=["patient_id", "session", "date", "item", "value"]
            )
            ids = frame.pop("patient_id")
            frame.insert(0, "patient", ids.map(label_of))
            frame.insert(1, "external_id", ids.map(external_of))
            yield frame


class PatientLevels(Exporter):
    identifier = "patient_levels"
    verbose_name = "Patient levels"
    description = (
        "One row per patient and scale: the usual level (person mean and its shrunken estimate), "
        "how reliable it is, trend, ceiling, counts of flags, and the pattern label."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "scale",
        c.N,
        c.FIRST_SESSION,
        c.LAST_SESSION,
        c.LEVEL,
        c.LEVEL_EB,
        c.RELIABILITY,
        c.PROVISIONAL,
        c.WITHIN_SD,
        c.SLOPE,
        c.CEILING,
        c.LAST_SCORE,
        c.N_RUPTURES,
        c.N_REPAIRS,
        c.N_UNREPAIRED,
        c.N_DECLINES,
        c.OPEN_RUPTURE,
        "pattern",
        "pattern_label",
    )

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        if period.analysis is None:
            return _empty(self.output_columns(pseudonymise=filters.pseudonymise))
        analysis = period.analysis
        sessions = _with_dates(analysis.sessions[analysis.sessions[c.SCALE] == c.TOTAL], period.dates)
        in_period = set(sessions.loc[_in_period(sessions["date"], filters), "episode"])
        levels = analysis.levels.assign(episode=analysis.levels[c.PATIENT].astype("int64"))
        levels = levels[levels["episode"].isin(in_period)]
        patterns = analysis.patterns.assign(episode=analysis.patterns[c.PATIENT].astype("int64"))
        patterns = patterns.set_index("episode")[[c.PATTERN, c.LABEL]].rename(
            columns={c.LABEL: "pattern_label"}
        )
        levels = levels.drop(columns=[c.PATIENT]).join(patterns, on="episode")
        levels = levels.sort_values(["episode", "scale"], kind="stable")
        return _join_info(levels, period.info, self.columns, pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        total = frame[frame["scale"] == c.TOTAL]
        if "treatment" in total.columns:
            total = total.assign(treatment=total["treatment"].map(lambda t: Episode.Treatment(t).label))
        wanted = [
            n
            for n in (
                "patient",
                "therapist",
                "treatment",
                c.N,
                c.LEVEL,
                c.LEVEL_EB,
                c.PROVISIONAL,
                c.N_RUPTURES,
                c.N_REPAIRS,
                c.N_UNREPAIRED,
                c.N_DECLINES,
                "pattern_label",
            )
            if n in total.columns
        ]
        return {
            "table": _table(total[wanted]),
            "note": "Total alliance scale; every scale is in the CSV and Excel files.",
            "landscape": True,
        }


class Flags(Exporter):
    identifier = "flags"
    verbose_name = "Flags"
    description = (
        "Every stored flag (rupture, repair, unrepaired rupture, declining trend, sudden gain or "
        "loss) with its explanation, the numbers behind it, and its acknowledgement: who, when "
        "and the note."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "session",
        "date",
        "scale",
        "kind",
        "magnitude",
        "threshold",
        "rule",
        "score",
        "baseline",
        "s_used",
        "explanation",
        "raised_at",
        "acknowledgement",
        "acknowledged_at",
        "acknowledged_by",
        "acknowledged_note",
    )

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        episodes = episodes_for_export(clinic=clinic, filters=filters)
        flags = _sessions_in_period(
            Flag.objects.filter(episode__in=episodes.values("pk")),
            filters,
            prefix="session__",
        ).order_by("episode_id", "session__number", "scale", "kind")
        records = []
        for (
            episode_id,
            number,
            day,
            scale,
            kind,
            magnitude,
            threshold,
            detail,
            explanation,
            created,
            acknowledgement,
            ack_at,
            first,
            last,
            email,
            note,
        ) in flags.values_list(
            "episode_id",
            "session__number",
            "session__date",
            "scale",
            "kind",
            "magnitude",
            "threshold",
            "detail",
            "explanation",
            "created_at",
            "acknowledgement",
            "acknowledged_at",
            "acknowledged_by__first_name",
            "acknowledged_by__last_name",
            "acknowledged_by__email",
            "acknowledged_note",
        ):
            records.append(
                {
                    "episode": episode_id,
                    "session": number,
                    "date": day,
                    "scale": scale,
                    "kind": kind,
                    "magnitude": magnitude,
                    "threshold": threshold,
                    "rule": detail.get("rule") or "",
                    "score": detail.get("score"),
                    "baseline": detail.get("baseline"),
                    "s_used": detail.get("s_used"),
                    "explanation": explanation,
                    "raised_at": _local(created),
                    "acknowledgement": acknowledgement,
                    "acknowledged_at": _local(ack_at),
                    "acknowledged_by": _person_name(first or "", last or "", email or "") if email else "",
                    "acknowledged_note": note,
                }
            )
        if not records:
            return _empty(self.output_columns(pseudonymise=filters.pseudonymise))
        frame = pd.DataFrame.from_records(records).astype(
            {"score": float, "baseline": float, "s_used": float}
        )
        info = episode_info(
            clinic=clinic, episode_ids=frame["episode"].unique().tolist(), pseudonymise=filters.pseudonymise
        )
        return _join_info(frame, info, self.columns, pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        wanted = [
            n
            for n in (
                "patient",
                "session",
                "date",
                "scale",
                "kind",
                "explanation",
                "acknowledgement",
                "acknowledged_by",
                "acknowledged_note",
            )
            if n in frame.columns
        ]
        return {"table": _table(frame[wanted]), "landscape": True}


class ClinicSummary(Exporter):
    identifier = "clinic_summary"
    verbose_name = "Clinic summary"
    description = (
        "One row per scale: patients, sessions, ruptures, repairs, unrepaired ruptures, declines, "
        "sudden changes, rupture and repair rates, the share of ceiling raters, and form "
        "completion (forms sent, completed, completion rate). The PDF is the clinic report."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        "scale",
        "n_patients",
        "n_sessions",
        "n_ruptures",
        "n_repairs",
        "n_unrepaired",
        "n_declines",
        "n_sudden_gains",
        "n_sudden_losses",
        "share_patients_with_rupture",
        "share_ruptures_repaired",
        "ceiling_rater_share",
        "sessions_held",
        "forms_sent",
        "forms_completed",
        "completion_rate",
        "link_completion_rate",
    )
    pdf_template = "exports/pdf/clinic_report.html"

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        period = analysis_for_export(clinic=clinic, filters=filters)
        summary = period_summary(period=period, filters=filters)
        completion = completion_figures(clinic=clinic, filters=filters)
        for name, value in completion.items():
            summary[name] = value
        floats = [n for n in summary.columns if pd.api.types.is_float_dtype(summary[n])]
        summary[floats] = summary[floats].round(DECIMALS)
        return summary[list(self.columns)]

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        from monitoring.exports import pdf

        period = analysis_for_export(clinic=clinic, filters=filters)
        levels: list[float] = []
        if period.analysis is not None:
            # The patients of the period: those with a scored session in it.
            sessions = _with_dates(period.analysis.sessions, period.dates)
            present = set(sessions.loc[_in_period(sessions["date"], filters), "episode"])
            lv = period.analysis.levels
            lv = lv[(lv[c.SCALE] == c.TOTAL) & lv[c.PATIENT].astype("int64").isin(present)]
            levels = [float(v) for v in lv[c.LEVEL].dropna()]
        first = frame.iloc[0] if len(frame) else None
        rows = []
        for record in frame.to_dict("records"):
            rows.append(
                {
                    "scale": wording.SCALE_NAMES.get(str(record["scale"]), str(record["scale"])),
                    "n_patients": record["n_patients"],
                    "n_sessions": record["n_sessions"],
                    "n_ruptures": record["n_ruptures"],
                    "n_repairs": record["n_repairs"],
                    "n_unrepaired": record["n_unrepaired"],
                    "n_declines": record["n_declines"],
                    "sudden": f"{record['n_sudden_gains']} / {record['n_sudden_losses']}",
                    "rupture_rate": _percent(record["share_patients_with_rupture"]),
                    "repair_rate": _percent(record["share_ruptures_repaired"]),
                    "ceiling": _percent(record["ceiling_rater_share"]),
                }
            )
        return {
            "scales": rows,
            "completion": None
            if first is None
            else {
                "sessions_held": int(first["sessions_held"]),
                "forms_sent": int(first["forms_sent"]),
                "forms_completed": int(first["forms_completed"]),
                "completion_rate": _percent(first["completion_rate"]),
                "link_completion_rate": _percent(first["link_completion_rate"]),
            },
            "histogram_svg": pdf.histogram_svg(
                values=levels, title="Patients' usual total alliance level", x_label="Usual level (1-5)"
            ),
            "n_levels": len(levels),
        }


class PatientReport(Exporter):
    identifier = "patient_report"
    verbose_name = "One-patient report"
    description = (
        "One patient's course: usual level, trajectory chart, flags with their explanations and "
        "acknowledgements, and the session table. Needs a patient; the files hold the session table."
    )
    formats = (PDF, CSV, XLSX)
    columns = ("patient", "external_id", "session", "date", *c.SCALES, "z_total", "flags")
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
        episode = episodes.select_related("patient", "therapist").order_by("-started_on").first()
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
        )
        period = analysis_for_export(clinic=clinic, filters=one)
        if period.analysis is None:
            return _empty(self.output_columns(pseudonymise=filters.pseudonymise))
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
        table = table[_in_period(table["date"], filters)]
        return _join_info(table, period.info, self.columns, pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        from monitoring import charts
        from monitoring.exports import pdf

        episode = self._episode(clinic=clinic, filters=filters)
        one = ExportFilters(
            end=filters.end, patient_code=filters.patient_code, pseudonymise=filters.pseudonymise
        )
        period = analysis_for_export(clinic=clinic, filters=one)
        info = period.info.loc[episode.pk]
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
                sessions=mine, levels=lv, events=ev, session_dates=dates
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
            chart_svg = pdf.trajectory_svg(
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
        flag_filters = ExportFilters(
            start=filters.start,
            end=filters.end,
            patient_code=filters.patient_code,
            pseudonymise=filters.pseudonymise,
        )
        flags = EXPORTS["flags"].frame(clinic=clinic, filters=flag_filters)
        assert isinstance(flags, pd.DataFrame)
        flags = flags[flags["episode_start"] == episode.started_on] if len(flags) else flags
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
            "flags": [
                {
                    **record,
                    "kind_title": wording.FLAGS[record["kind"]].title
                    if record["kind"] in wording.FLAGS
                    else record["kind"],
                    "scale_name": wording.SCALE_NAMES.get(record["scale"], record["scale"]),
                    "acknowledgement_label": dict(Flag.Acknowledgement.choices).get(
                        record["acknowledgement"], ""
                    ),
                }
                for record in flags.to_dict("records")
            ],
            "table": _table(table),
        }

    def filename(self, *, clinic: Clinic, filters: ExportFilters, fmt: str) -> str:
        name = super().filename(clinic=clinic, filters=filters, fmt=fmt)
        return name.replace("patient-report", f"patient-report-{str(filters.patient_code)[:8]}")


def period_summary(*, period: PeriodAnalysis, filters: ExportFilters) -> pd.DataFrame:
    """``analysis.summary``'s figures for the sessions of the period, one row per scale.

    Events and sessions are counted where their session date falls in the period; each
    patient's level (and ceiling) is the one at the period's end. Without a period this equals
    ``analysis.summary`` (a test checks it), with ``ceiling_share`` named ``ceiling_rater_share``.
    """
    scales = list(c.SCALES)
    if period.analysis is None:
        out = pd.DataFrame({"scale": scales})
        for name in (
            "n_patients",
            "n_sessions",
            "n_ruptures",
            "n_repairs",
            "n_unrepaired",
            "n_declines",
            "n_sudden_gains",
            "n_sudden_losses",
        ):
            out[name] = 0
        for name in ("share_patients_with_rupture", "share_ruptures_repaired", "ceiling_rater_share"):
            out[name] = np.nan
        return out
    a = period.analysis
    sessions = _with_dates(a.sessions[a.sessions[c.SCORE].notna()], period.dates)
    sessions = sessions[_in_period(sessions["date"], filters)]
    events = _with_dates(a.events, period.dates)
    events = events[_in_period(events["date"], filters)]
    levels = a.levels.assign(episode=a.levels[c.PATIENT].astype("int64"))
    rows = []
    for scale in scales:
        s = sessions[sessions["scale"].astype(str) == scale]
        e = events[events["scale"].astype(str) == scale]
        patients = set(s["episode"])
        lv = levels[(levels[c.SCALE].astype(str) == scale) & levels["episode"].isin(patients)]
        kinds = e["kind"].astype(str).value_counts()
        n_patients = len(patients)
        ruptured = e.loc[e["kind"].astype(str) == c.RUPTURE, "episode"].nunique()
        repairs, unrepaired = int(kinds.get(c.REPAIR, 0)), int(kinds.get(c.UNREPAIRED, 0))
        rows.append(
            {
                "scale": scale,
                "n_patients": n_patients,
                "n_sessions": len(s),
                "n_ruptures": int(kinds.get(c.RUPTURE, 0)),
                "n_repairs": repairs,
                "n_unrepaired": unrepaired,
                "n_declines": int(kinds.get(c.DECLINE, 0)),
                "n_sudden_gains": int(kinds.get(c.SUDDEN_GAIN, 0)),
                "n_sudden_losses": int(kinds.get(c.SUDDEN_LOSS, 0)),
                "share_patients_with_rupture": ruptured / n_patients if n_patients else np.nan,
                "share_ruptures_repaired": repairs / (repairs + unrepaired)
                if repairs + unrepaired
                else np.nan,
                "ceiling_rater_share": float(lv[c.CEILING].mean()) if len(lv) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def completion_figures(*, clinic: Clinic, filters: ExportFilters) -> dict[str, float | int]:
    """Form completion for the period: held sessions, forms sent (sessions with a form link; a
    link re-issued for the same session counts once), patient forms completed (whatever the
    route: link, tablet, staff entry or import), and two rates: completed per held session, and
    completed per session a link was sent for."""
    episodes = episodes_for_export(clinic=clinic, filters=filters)
    held = _sessions_in_period(
        Session.objects.filter(episode__in=episodes.values("pk"), status=Session.Status.HELD), filters
    )
    answered = Exists(Response.objects.filter(session=OuterRef("pk"), rater=Rater.PATIENT))
    invited = Exists(Invitation.objects.filter(session=OuterRef("pk")))
    counts = held.aggregate(
        sessions_held=Count("pk"),
        forms_sent=Count("pk", filter=Q(invited)),
        forms_completed=Count("pk", filter=Q(answered)),
        link_completed=Count("pk", filter=Q(invited) & Q(answered)),
    )
    sent, completed = counts["forms_sent"], counts["forms_completed"]
    return {
        "sessions_held": counts["sessions_held"],
        "forms_sent": sent,
        "forms_completed": completed,
        "completion_rate": completed / counts["sessions_held"] if counts["sessions_held"] else np.nan,
        "link_completion_rate": counts["link_completed"] / sent if sent else np.nan,
    }


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})


def _local(value: datetime | None) -> datetime | None:
    """Aware datetimes in the clinic's time zone, made naive: spreadsheets have no time zones."""
    return timezone.localtime(value).replace(tzinfo=None) if value else None


def _percent(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "\u2013"
    return "\u2013" if np.isnan(number) else f"{100 * number:.0f}%"


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def _table(frame: pd.DataFrame) -> Table:
    """A frame as strings for a PDF table: numbers to two decimals, missing as a dash."""

    def text(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return "\u2013"
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "no"
        if isinstance(value, float | np.floating):
            return f"{value:.2f}"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)

    return Table(
        columns=[name.replace("_", " ") for name in frame.columns],
        rows=[[text(v) for v in row] for row in frame.itertuples(index=False)],
    )


#: The registry: every report, by identifier.
EXPORTS: dict[str, Exporter] = {
    e.identifier: e
    for e in (SessionScores(), ItemAnswers(), PatientLevels(), Flags(), ClinicSummary(), PatientReport())
}


def exporter_get(identifier: str) -> Exporter:
    try:
        return EXPORTS[identifier]
    except KeyError:
        raise ApplicationError(f"There is no export called '{identifier}'.") from None


# --- Rendering ----------------------------------------------------------------------------------


class Rendered(NamedTuple):
    """A rendered export: ``content`` is bytes, or an iterator of bytes for streamed formats."""

    content: bytes | Iterator[bytes]
    content_type: str
    filename: str


ProgressCallback = Callable[[int], None]


def render(
    exporter: Exporter,
    frame: FrameOrChunks,
    fmt: str,
    *,
    clinic: Clinic,
    filters: ExportFilters,
    on_rows: ProgressCallback | None = None,
) -> Rendered:
    """Turn an exporter's frame into ``fmt``. CSV and XLSX of a streamed exporter stream.

    ``on_rows`` is called with the number of rows written so far, for a job's progress.
    PDF and FHIR need more than the frame (the clinic's name, the instrument, the charts), so
    they also get the clinic and the filters; both are always passed, for one signature.
    """
    if fmt not in exporter.formats:
        raise ApplicationError(f"{exporter.verbose_name} is not available as {FORMAT_NAMES.get(fmt, fmt)}.")
    filename = exporter.filename(clinic=clinic, filters=filters, fmt=fmt)
    content_type = CONTENT_TYPES[fmt]
    columns = exporter.output_columns(pseudonymise=filters.pseudonymise)
    if exporter.identifier == "item_answers":
        columns = list(exporter.columns)  # the import layout is fixed: external_id stays, empty
    chunks = _chunks(frame)
    if fmt == CSV:
        return Rendered(csv_stream(chunks, columns=columns, on_rows=on_rows), content_type, filename)
    if fmt == XLSX:
        return Rendered(
            xlsx_stream(chunks, columns=columns, sheet=exporter.verbose_name, on_rows=on_rows),
            content_type,
            filename,
        )
    if fmt == PDF:
        from monitoring.exports import pdf

        whole = pd.concat(list(chunks), ignore_index=True) if exporter.streaming else frame
        assert isinstance(whole, pd.DataFrame)
        return Rendered(
            pdf.report_pdf(exporter=exporter, clinic=clinic, filters=filters, frame=whole),
            content_type,
            filename,
        )
    if fmt == FHIR:
        from monitoring.exports import fhir

        return Rendered(
            fhir.bundle_stream(clinic=clinic, filters=filters, on_rows=on_rows), content_type, filename
        )
    raise ApplicationError(f"Unknown format '{fmt}'.")


def _chunks(frame: FrameOrChunks) -> Iterator[pd.DataFrame]:
    if isinstance(frame, pd.DataFrame):
        yield frame
    else:
        yield from frame


def csv_stream(
    chunks: Iterable[pd.DataFrame], *, columns: Sequence[str], on_rows: ProgressCallback | None = None
) -> Iterator[bytes]:
    """CSV (UTF-8, comma, CRLF as RFC 4180), one encoded block per chunk; text cells guarded."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(columns)
    yield buffer.getvalue().encode()
    written = 0
    for chunk in chunks:
        if chunk.empty:
            continue
        block = guard_frame(chunk[list(columns)]).to_csv(
            index=False, header=False, lineterminator="\r\n", date_format="%Y-%m-%d %H:%M:%S"
        )
        yield block.encode()
        written += len(chunk)
        if on_rows:
            on_rows(written)


def xlsx_stream(
    chunks: Iterable[pd.DataFrame],
    *,
    columns: Sequence[str],
    sheet: str,
    on_rows: ProgressCallback | None = None,
    read_size: int = 1 << 20,
) -> Iterator[bytes]:
    """An XLSX workbook written with XlsxWriter in ``constant_memory`` mode (rows go to disk as
    they are written), then read back in blocks. Text cells are guarded and always written as
    strings (``strings_to_formulas`` off), numbers as numbers, dates as Excel dates."""
    import xlsxwriter

    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="bordin-export-")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "remove_timezone": True,
            },
        )
        bold = workbook.add_format({"bold": True, "bottom": 1})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        number = workbook.add_format({"num_format": "0.00##"})
        title = sheet[:28]
        worksheet, row, sheets = None, 0, 0

        def new_sheet() -> Any:
            nonlocal sheets
            sheets += 1
            ws = workbook.add_worksheet(title if sheets == 1 else f"{title[:24]} ({sheets})")
            for col, name in enumerate(columns):
                ws.write_string(0, col, name, bold)
                ws.set_column(col, col, max(10, min(40, len(name) + 2)))
            ws.freeze_panes(1, 0)
            return ws

        worksheet = new_sheet()
        written = 0
        for chunk in chunks:
            if chunk.empty:
                continue
            guarded = guard_frame(chunk[list(columns)])
            for values in guarded.itertuples(index=False, name=None):
                if row >= XLSX_MAX_ROWS:
                    worksheet, row = new_sheet(), 0
                row += 1
                for col, value in enumerate(values):
                    _xlsx_cell(worksheet, row, col, value, day=day, stamp=stamp, number=number)
            written += len(chunk)
            if on_rows:
                on_rows(written)
        workbook.close()
        with open(path, "rb") as stream:
            while block := stream.read(read_size):
                yield block
    finally:
        os.unlink(path)


def _xlsx_cell(ws: Any, row: int, col: int, value: object, *, day: Any, stamp: Any, number: Any) -> None:
    if value is None or value is pd.NA or value is pd.NaT:
        return
    if isinstance(value, bool | np.bool_):
        ws.write_boolean(row, col, bool(value))
    elif isinstance(value, int | np.integer):
        ws.write_number(row, col, int(value))
    elif isinstance(value, float | np.floating):
        if np.isfinite(value):
            ws.write_number(row, col, float(value), number)
    elif isinstance(value, datetime | pd.Timestamp):
        ws.write_datetime(row, col, value, stamp)
    elif isinstance(value, date):
        ws.write_datetime(row, col, value, day)
    else:
        ws.write_string(row, col, str(value))
