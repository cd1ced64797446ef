"""What every export shares: the formats, the filters, pseudonyms and the exporter base class.

A report is an :class:`Exporter` subclass (one module per report in ``monitoring.exports.reports``)
whose class attributes say what the renderer (``monitoring.exports.renderer``) needs to know about
it: its formats, its columns, whether it streams, whether its column layout is fixed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, TypeAlias

import pandas as pd
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode
from monitoring.exports.columns import Column
from monitoring.exports.tables import pdf_table
from monitoring.models import Answer

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

#: Analysis-based figures are rounded to this many decimals: readable, and far finer than the
#: 1-5 answer scale.
DECIMALS = 4

#: Columns that name or identify a person; left out of pseudonymised exports.
IDENTIFYING = ("external_id", "acknowledged_by", "acknowledged_note")

#: The FHIR Bundle types an export can be (``ExportFilters.fhir_bundle``).
FHIR_BUNDLES = ("collection", "transaction")
#: A study key's shortest length.
MIN_STUDY_KEY = 16
#: Where a job's filters keep the sealed key until the job has run.
SEALED_KEY = "sealed_key"
#: Where jobs made before keys were sealed kept the key, in plain text (``export_keys_scrub``).
LEGACY_KEY = "pseudonym_key"


# --- Filters and pseudonyms ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    """What an export covers. Every field narrows it; the defaults export the whole clinic.

    ``start``/``end`` bound the *session date* (both inclusive). ``therapist_id`` and
    ``treatment`` select episodes of care by their therapist and treatment. ``patient_code``
    (the patient's opaque code) narrows any report to one patient and is required by the
    one-patient PDF report. ``pseudonymise`` gives the research export; its identifiers are
    keyed hashes under ``pseudonym_key`` (:func:`pseudonym`): a random key drawn for this export
    unless the admin gives a study key, so that two exports with the same study key can be joined
    and no other file can. ``fhir_bundle`` is the FHIR Bundle type: ``collection`` (to file) or
    ``transaction`` (to load into a FHIR server with conditional creates).

    The key is never written down in plain text: a job keeps it sealed (:func:`seal_key`, under a
    key derived from ``SECRET_KEY``) until it has run (``to_json``/``from_json``), the audit trail
    and the job's description keep only whether a study key was given and its fingerprint
    (``to_audit``), so that the exports that can be joined are known without the key.
    """

    start: date | None = None
    end: date | None = None
    therapist_id: int | None = None
    treatment: str = ""
    patient_code: str = ""
    pseudonymise: bool = False
    #: The key of the pseudonyms: the admin's study key, or drawn at random for this export.
    pseudonym_key: str = field(default="", repr=False)
    fhir_bundle: str = "collection"
    #: Whether ``pseudonym_key`` is the admin's study key (None: it is, if one was given).
    study_key: bool | None = None
    #: The study key's fingerprint (:func:`study_key_fingerprint`); empty without a study key.
    key_fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.pseudonym_key and len(self.pseudonym_key) < MIN_STUDY_KEY:
            raise ApplicationError(f"A study key needs at least {MIN_STUDY_KEY} characters.")
        if self.study_key is None:
            object.__setattr__(self, "study_key", bool(self.pseudonym_key))
        if self.study_key and self.pseudonym_key and not self.key_fingerprint:
            object.__setattr__(self, "key_fingerprint", study_key_fingerprint(self.pseudonym_key))
        if not self.pseudonymise:
            object.__setattr__(self, "study_key", False)
            object.__setattr__(self, "key_fingerprint", "")
        if self.pseudonymise and not self.pseudonym_key:
            object.__setattr__(self, "pseudonym_key", secrets.token_hex(32))
        if self.fhir_bundle not in FHIR_BUNDLES:
            raise ApplicationError("The FHIR bundle type is 'collection' or 'transaction'.")
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

    def to_audit(self) -> dict[str, Any]:
        """The filters in words a record may keep (the audit trail, a job's description): no key,
        sealed or not, which would re-link the export; whether a study key was given and its
        fingerprint (the same fingerprint: exports that join)."""
        data = asdict(self)
        del data["pseudonym_key"]
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat() if self.end else None
        return data

    def to_json(self) -> dict[str, Any]:
        """The filters for a job that has yet to run: :meth:`to_audit` and, when pseudonymised, the
        key sealed (:func:`seal_key`). The worker drops ``sealed_key`` once the job has run."""
        data = self.to_audit()
        if self.pseudonymise:
            data[SEALED_KEY] = seal_key(self.pseudonym_key)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, need_key: bool = False) -> ExportFilters:
        """The filters of :meth:`to_json` (or of :meth:`to_audit`: a fresh random key then). With
        ``need_key`` (a job about to run) a study key must still be held: without it the export
        would silently use another key."""
        therapist = data.get("therapist_id")
        pseudonymise = bool(data.get("pseudonymise"))
        study = bool(data.get("study_key")) and pseudonymise
        sealed = str(data.get(SEALED_KEY) or "")
        # A job queued before keys were sealed holds it in plain text (see export_keys_scrub).
        legacy = str(data.get(LEGACY_KEY) or "")
        if legacy and not sealed:
            study = pseudonymise and not _drawn(legacy)
        if need_key and study and not (sealed or legacy):
            raise ApplicationError("This export's study key is no longer held: start the export again.")
        return cls(
            start=_day(data.get("start")),
            end=_day(data.get("end")),
            therapist_id=int(str(therapist)) if therapist not in (None, "") else None,
            treatment=str(data.get("treatment") or ""),
            patient_code=str(data.get("patient_code") or ""),
            pseudonymise=pseudonymise,
            pseudonym_key=(unseal_key(sealed) if sealed else legacy) if pseudonymise else "",
            fhir_bundle=str(data.get("fhir_bundle") or "collection"),
            study_key=study,
            key_fingerprint=str(data.get("key_fingerprint") or "") if study and not legacy else "",
        )

    @staticmethod
    def without_key(data: Mapping[str, Any]) -> dict[str, Any]:
        """A job's stored filters once it has run: no key, sealed or (from before keys were
        sealed) plain; a study key's fingerprint stays, so the exports that join stay known."""
        kept = {name: value for name, value in data.items() if name not in (SEALED_KEY, LEGACY_KEY)}
        if LEGACY_KEY in data:
            filters = ExportFilters.from_json(data)
            kept.update(study_key=filters.study_key, key_fingerprint=filters.key_fingerprint)
        return kept

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


def _fernet() -> MultiFernet:
    """Fernet under keys derived from ``SECRET_KEY`` (and its fallbacks, so a job queued before a
    key rotation still runs)."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    derived = [salted_hmac(_SEAL_SALT, "fernet", secret=k, algorithm="sha256").digest() for k in keys]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(d)) for d in derived])


_SEAL_SALT = "monitoring.exports.pseudonym-key"


def seal_key(key: str) -> str:
    """``key`` encrypted (Fernet: AES-128-CBC and HMAC-SHA256) for the few seconds or minutes a
    job waits for its worker: the database alone does not give it away."""
    return _fernet().encrypt(key.encode()).decode()


def _drawn(key: str) -> bool:
    """Whether ``key`` looks drawn by :class:`ExportFilters` (64 hex digits) rather than given."""
    return len(key) == 64 and all(ch in "0123456789abcdef" for ch in key)


def unseal_key(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ApplicationError("This export's key can no longer be read: start the export again.") from exc


def study_key_fingerprint(key: str) -> str:
    """A study key's fingerprint: the same key, the same fingerprint (exports that join), and
    nothing to recompute the pseudonyms with. Keyed with ``SECRET_KEY``, so that a database
    alone cannot test guesses of a weak key against it."""
    return salted_hmac("monitoring.exports.key-fingerprint", key, algorithm="sha256").hexdigest()[:16]


def pseudonym(*, clinic: Clinic, kind: str, value: object, key: str) -> str:
    """A keyed hash standing in for an identifier (patient, therapist, episode, session,
    response, flag) in a pseudonymised export.

    HMAC-SHA256 under ``key`` (``ExportFilters.pseudonym_key``) of the clinic, the kind and the
    value. The key is drawn at random for each export unless the admin gives a study key, so
    nothing outside the export (another export, the identified files, the API, SECRET_KEY) can
    re-link its rows; the same study key gives the same pseudonyms, so a study's exports join.
    16 hex digits (64 bits) make a collision within a clinic practically impossible.
    """
    if not key:
        raise ValueError("A pseudonym needs the export's key.")
    message = f"{clinic.code}:{kind}:{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:16]


# --- The exporter base class ---------------------------------------------------------------------


FrameOrChunks: TypeAlias = pd.DataFrame | Iterator[pd.DataFrame]
#: Called with the number of rows written so far, for a job's progress.
ProgressCallback = Callable[[int], None]


class Exporter:
    """One report. Subclasses set the class attributes and implement :meth:`frame`."""

    identifier: ClassVar[str]
    verbose_name: ClassVar[str]
    description: ClassVar[str]
    formats: ClassVar[tuple[str, ...]] = (CSV, XLSX)
    #: The columns in order, each with its meaning, unit and codes (identifying columns are
    #: dropped when pseudonymised); docs/data-dictionary.md is written from them.
    columns: ClassVar[tuple[Column, ...]] = ()
    #: True when the file's columns are a fixed layout another program reads back (the CSV
    #: import): every column stays, identifying ones emptied rather than dropped, when pseudonymised.
    fixed_layout: ClassVar[bool] = False
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

    def answers(self, *, clinic: Clinic, filters: ExportFilters) -> QuerySet[Answer]:
        """The patient-rated answers the report covers: what a FHIR bundle holds, for exporters
        that offer FHIR."""
        raise NotImplementedError(f"{self.verbose_name} has no answers to write as FHIR.")

    def column_names(self) -> list[str]:
        """The names of :attr:`columns`, in order."""
        return [column.name for column in self.columns]

    def documented_columns(self) -> tuple[Column, ...]:
        """Every column the files can have, for the data dictionary: :attr:`columns`, and any
        that depend on what is loaded (a report adds them by overriding this)."""
        return self.columns

    def output_columns(self, *, pseudonymise: bool) -> list[str]:
        """The columns of the files, in order."""
        if self.fixed_layout:
            return self.column_names()
        return [name for name in self.column_names() if not (pseudonymise and name in IDENTIFYING)]

    def empty(self, *, filters: ExportFilters) -> pd.DataFrame:
        """The report with no rows: its output columns, all empty."""
        return pd.DataFrame(
            {name: pd.Series(dtype=object) for name in self.output_columns(pseudonymise=filters.pseudonymise)}
        )

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        """Template context of the PDF; the default is a titled table of the frame."""
        return {"table": pdf_table(frame)}

    def filename(self, *, clinic: Clinic, filters: ExportFilters, fmt: str) -> str:
        stamp = timezone.localdate().isoformat()
        parts = [clinic.slug, self.identifier.replace("_", "-"), stamp]
        if filters.pseudonymise:
            parts.insert(2, "pseudonymised")
        return "-".join(parts) + "." + EXTENSIONS[fmt]
