"""Import of item-level answers from CSV: all or nothing.

Two layouts are accepted (documented in docs/import.md); the header decides which.

* **long**: one row per answer: ``patient, session, date, item, value`` and optionally
  ``external_id``.
* **wide**: one row per session: ``patient, session, date, item_1 .. item_12`` and optionally
  ``external_id``. An empty item cell is a missing answer (scoring prorates or leaves the score
  missing, methods section 1).

Every row is checked before anything is written. If any row is bad, the import raises an
``ApplicationError`` whose problems name each bad row (line, column, reason) and the database is
left exactly as it was. Otherwise patients, episodes and sessions are created as needed and all
responses are stored in one transaction.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TextIO

import pandas as pd
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Patient, Session
from clinics.permissions import works_in
from monitoring.collection.responses import ResponseEntry, answer_problem, answers_needed, responses_store
from monitoring.models import Instrument, Response

MAX_PROBLEMS = 200
REQUIRED = ("patient", "session", "date")


@dataclass
class _SessionRows:
    patient: str
    external_id: str
    number: int
    date: date
    line: int
    answers: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportResult:
    patients_created: int
    sessions_created: int
    responses_created: int
    answers_created: int


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _parse(reader: csv.DictReader[str], *, instrument: Instrument, problems: list[str]) -> list[_SessionRows]:
    item_numbers = {i.number for i in instrument.items.all()}
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    wide_columns = {h: _int(h.removeprefix("item_")) for h in header if h.startswith("item_")}
    is_wide = bool(wide_columns)
    if not is_wide:
        missing += [c for c in ("item", "value") if c not in header]
    if missing:
        raise ApplicationError(
            "The file's header is missing required columns: " + ", ".join(missing) + ". "
            "Use either patient,session,date,item,value (one row per answer) or "
            "patient,session,date,item_1..item_12 (one row per session)."
        )
    known = {*REQUIRED, "external_id", *(wide_columns if is_wide else ("item", "value"))}
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append("Line 1: unknown column(s) " + ", ".join(unknown) + ".")
    for column, number in wide_columns.items():
        if number not in item_numbers:
            problems.append(
                f"Line 1, column {column}: the instrument has no item {column.removeprefix('item_')}."
            )

    sessions: dict[tuple[str, int], _SessionRows] = {}
    for row in reader:
        line = reader.line_num

        def bad(column: str, reason: str, line: int = line) -> None:
            problems.append(f"Line {line}, column {column}: {reason}")

        patient = (row.get("patient") or "").strip()
        external_id = (row.get("external_id") or "").strip()
        if not patient and not external_id:
            bad("patient", "no patient label or external_id.")
            continue
        number = _int(row.get("session") or "")
        if number is None or number < 1:
            bad("session", f"'{row.get('session')}' is not a session number (1 or more).")
            continue
        try:
            when = date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            bad("date", f"'{row.get('date')}' is not a date in the form YYYY-MM-DD.")
            continue
        key = (external_id or patient, number)
        entry = sessions.get(key)
        if entry is None:
            entry = sessions[key] = _SessionRows(patient, external_id, number, when, line)
        elif is_wide:
            bad("session", f"session {number} of {key[0]} appears twice (first on line {entry.line}).")
            continue
        elif entry.date != when:
            bad(
                "date",
                f"session {number} of {key[0]} has date {entry.date} on line {entry.line}, here {when}.",
            )
            continue

        cells = (
            [(c, wide_columns[c], row.get(c) or "") for c in wide_columns]
            if is_wide
            else [("item", _int(row.get("item") or ""), row.get("value") or "")]
        )
        for column, item, raw in cells:
            if item is None or item not in item_numbers:
                bad(
                    column,
                    f"'{row.get('item')}' is not an item of the instrument (1 to {max(item_numbers)}).",
                )
                continue
            if is_wide and not raw.strip():
                continue  # a missing answer in a session row
            value = _int(raw)
            value_column = column if is_wide else "value"
            if value is None or answer_problem(
                instrument=instrument, item_numbers=item_numbers, number=item, value=value
            ):
                bad(
                    value_column,
                    f"'{raw}' is not an answer on the {instrument.scale_min}-{instrument.scale_max} scale.",
                )
            elif item in entry.answers:
                bad("item", f"item {item} of session {number} for {key[0]} is given twice.")
            else:
                entry.answers[item] = value
        if len(problems) >= MAX_PROBLEMS:
            break
    return list(sessions.values())


def responses_import(
    *,
    clinic: Clinic,
    file: TextIO | Iterable[str],
    therapist: User,
    instrument: Instrument | None = None,
    source: str = Response.Source.IMPORT,
) -> ImportResult:
    """Import a long or wide CSV of patient-rated answers into ``clinic``; all or nothing.

    New patients get an episode with ``therapist``; existing patients (matched by external_id,
    else label) get their sessions added to their open episode.
    """
    if not works_in(user=therapist, clinic_id=clinic.pk):
        raise ApplicationError(f"{therapist} is not a member of {clinic}.")
    instrument = instrument or Instrument.objects.filter(rater="patient").order_by("code", "-version").first()
    if instrument is None:
        raise ApplicationError("No patient-rated instrument is loaded; run load_instrument first.")
    items = {i.number: i for i in instrument.items.all()}
    needed = answers_needed(instrument, require_all=False)

    problems: list[str] = []
    text = file if isinstance(file, io.TextIOBase) else io.StringIO("".join(file))
    rows = _parse(csv.DictReader(text), instrument=instrument, problems=problems)
    if not rows and not problems:
        raise ApplicationError("The file has a header but no rows.")

    patients = _existing_patients(clinic=clinic, rows=rows, problems=problems)
    open_episodes = {
        e.patient_id: e for e in Episode.objects.filter(patient__in=patients.values(), ended_on=None)
    }
    existing_sessions = {
        (s.episode_id, s.number): s
        for s in Session.objects.filter(episode__in=open_episodes.values()).prefetch_related("responses")
    }
    for r in rows:
        if len(r.answers) < needed:
            problems.append(
                f"Line {r.line}: session {r.number} of {r.external_id or r.patient} has only {len(r.answers)} "
                f"of {len(items)} answers; at least {needed} are needed for a total score."
            )
        patient = patients.get(r.external_id or r.patient)
        episode = open_episodes.get(patient.pk) if patient else None
        session = existing_sessions.get((episode.pk, r.number)) if episode else None
        if session is not None and any(resp.rater == "patient" for resp in session.responses.all()):
            problems.append(
                f"Line {r.line}: session {r.number} of {r.external_id or r.patient} already has a response."
            )
    if problems:
        raise ApplicationError(
            f"Nothing was imported: {len(problems)} problem(s) found. Fix them and import the whole file again.",
            problems=problems[:MAX_PROBLEMS],
        )

    now = timezone.now()
    with transaction.atomic():
        episodes: dict[str, Episode] = {}
        patients_created = 0
        for r in sorted(rows, key=lambda r: r.date):
            key = r.external_id or r.patient
            if key in episodes:
                continue
            patient = patients.get(key)
            if patient is None:
                patient = Patient.objects.create(
                    clinic=clinic,
                    label=r.patient or r.external_id,
                    external_id=r.external_id,
                    therapist=therapist,
                )
                patients_created += 1
            episode = open_episodes.get(patient.pk)
            if episode is None:
                episode = Episode.objects.create(
                    patient=patient, therapist=patient.therapist or therapist, started_on=r.date
                )
            episodes[key] = episode
        new_sessions = [
            Session(
                episode=episodes[r.external_id or r.patient],
                number=r.number,
                date=r.date,
                status=Session.Status.HELD,
            )
            for r in rows
            if (episodes[r.external_id or r.patient].pk, r.number) not in existing_sessions
        ]
        Session.objects.bulk_create(new_sessions, batch_size=1000)
        sessions = {
            (s.episode_id, s.number): s for s in Session.objects.filter(episode__in=episodes.values())
        }
        # The one write path for answers: it stores them and analyses every episode on commit.
        responses = responses_store(
            instrument=instrument,
            entries=[
                ResponseEntry(
                    session=sessions[(episodes[r.external_id or r.patient].pk, r.number)],
                    answers=r.answers,
                    source=source,
                    submitted_at=now,
                )
                for r in rows
            ],
            require_all=False,
        )
    return ImportResult(
        patients_created, len(new_sessions), len(responses), sum(len(r.answers) for r in rows)
    )


def _existing_patients(
    *, clinic: Clinic, rows: list[_SessionRows], problems: list[str]
) -> dict[str, Patient]:
    """Match file rows to the clinic's patients: by external_id when given, else by label."""
    external_ids = {r.external_id for r in rows if r.external_id}
    labels = {r.patient for r in rows if r.patient}
    found: dict[str, Patient] = {}
    for p in Patient.objects.filter(clinic=clinic, external_id__in=external_ids):
        found[p.external_id] = p
    matched: Patient | None
    by_label = {p.label: p for p in Patient.objects.filter(clinic=clinic, label__in=labels)}
    labels_seen: dict[str, str] = defaultdict(str)
    for r in rows:
        if r.external_id:
            matched = found.get(r.external_id)
            if (
                matched is None
                and r.patient in by_label
                and by_label[r.patient].external_id not in ("", r.external_id)
            ):
                problems.append(
                    f"Line {r.line}: label '{r.patient}' belongs to another patient "
                    f"(external id {by_label[r.patient].external_id})."
                )
            elif matched is None and r.patient in by_label:
                problems.append(
                    f"Line {r.line}: a patient labelled '{r.patient}' exists without external id; "
                    "add the external id to that patient first, or leave the column empty."
                )
        else:
            if r.patient in by_label:
                found[r.patient] = by_label[r.patient]
        key = r.external_id or r.patient
        label = r.patient or r.external_id
        if labels_seen[label] and labels_seen[label] != key:
            problems.append(f"Line {r.line}: label '{label}' is used for two different external ids.")
        labels_seen[label] = key
    return found


def items_import_csv(items: pd.DataFrame, *, first_date: date, prefix: str = "") -> io.StringIO:
    """A wide import file from simulated item answers (``monitoring.analytics.simulate``): one row
    per session, weekly from ``first_date``; ``prefix`` keeps labels apart between cohorts. For
    the demo, tests and benchmarks: they load data through the same importer clinics use."""
    numbers = sorted(int(col.removeprefix("item_")) for col in items.columns if col.startswith("item_"))
    lines = ["patient,session,date," + ",".join(f"item_{n}" for n in numbers)]
    for row in items.itertuples(index=False):
        when = first_date + timedelta(weeks=int(row.session) - 1)
        values = ",".join(str(getattr(row, f"item_{n}")) for n in numbers)
        lines.append(f"{prefix}{row.patient},{row.session},{when.isoformat()},{values}")
    return io.StringIO("\n".join(lines) + "\n")
