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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TextIO, cast

import pandas as pd
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Patient, Session
from clinics.permissions import works_in
from clinics.validation import MAX_SESSION_NUMBER, date_problem, session_number_problem, text_problem
from monitoring.collection.responses import ResponseEntry, answer_problem, answers_needed, responses_store
from monitoring.instruments.measures import outcome_instruments
from monitoring.models import Instrument, Response

MAX_PROBLEMS = 200
ALLIANCE = "alliance"
REQUIRED = ("patient", "session", "date")
LABEL_LENGTH = cast(int, Patient._meta.get_field("label").max_length)
EXTERNAL_ID_LENGTH = cast(int, Patient._meta.get_field("external_id").max_length)


@dataclass
class _SessionRows:
    patient: str
    external_id: str
    number: int
    date: date
    line: int
    answers: dict[str, dict[int, int]] = field(default_factory=dict)  # measure -> item -> value

    @property
    def key(self) -> tuple[str, str]:
        """Who the row is about: its external id when given, else its label. The two kinds are
        told apart, so a label never matches another row's external id (issue 14, finding 4)."""
        return _identity(self.patient, self.external_id)

    @property
    def label(self) -> str:
        """The label the patient has or gets: a row without one is labelled with its external id."""
        return self.patient or self.external_id


def _identity(patient: str, external_id: str) -> tuple[str, str]:
    return ("external_id", external_id) if external_id else ("label", patient)


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


def _wide_column(header: str, instruments: dict[str, Instrument]) -> tuple[str, int | None] | None:
    """(measure, item) of a wide column: ``item_<n>`` (the alliance) or ``<code>_<n>``."""
    prefix, _, number = header.rpartition("_")
    if prefix == "item":
        return ALLIANCE, _int(number)
    if prefix in instruments and prefix != ALLIANCE:
        return prefix, _int(number)
    return None


def _parse(
    reader: csv.DictReader[str], *, instruments: dict[str, Instrument], problems: list[str]
) -> list[_SessionRows]:
    item_numbers = {measure: {i.number for i in inst.items.all()} for measure, inst in instruments.items()}
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    wide_columns = {h: wide for h in header if (wide := _wide_column(h, instruments))}
    is_wide = bool(wide_columns)
    if not is_wide:
        missing += [c for c in ("item", "value") if c not in header]
    if missing:
        raise ApplicationError(
            "The file's header is missing required columns: " + ", ".join(missing) + ". "
            "Use either patient,session,date,item,value (one row per answer; optionally measure) or "
            "patient,session,date,item_1..item_12 (one row per session; phq9_1.. and gad7_1.. for "
            "symptom measures)."
        )
    known = {*REQUIRED, "external_id", *(wide_columns if is_wide else ("item", "value", "measure"))}
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append("Line 1: unknown column(s) " + ", ".join(unknown) + ".")
    for column, (measure, number) in wide_columns.items():
        if number not in item_numbers[measure]:
            problems.append(f"Line 1, column {column}: {_name(instruments[measure])} has no item {number}.")

    sessions: dict[tuple[tuple[str, str], int], _SessionRows] = {}
    for row in reader:
        line = reader.line_num

        def bad(column: str, reason: str, line: int = line) -> None:
            problems.append(f"Line {line}, column {column}: {reason}")

        patient = (row.get("patient") or "").strip()
        external_id = (row.get("external_id") or "").strip()
        if not patient and not external_id:
            bad("patient", "no patient label or external_id.")
            continue
        # What the database would refuse with a traceback (PostgreSQL) or store silently (SQLite):
        # text longer than its column or with control characters, an out-of-range number or date.
        # A row without a label is labelled with its external id, which must then fit the label.
        text_problems = [
            (column, problem)
            for column, value, limit in (
                ("patient", patient, LABEL_LENGTH),
                ("external_id", external_id, EXTERNAL_ID_LENGTH),
            )
            if (problem := text_problem(value, max_length=limit))
        ]
        if not patient and len(external_id) > LABEL_LENGTH:
            text_problems.append(
                (
                    "patient",
                    f"empty, and the external id is too long to serve as the label (at most {LABEL_LENGTH}).",
                )
            )
        for column, problem in text_problems:
            bad(column, problem)
        number = _int(row.get("session") or "")
        if number is None or session_number_problem(number):
            bad("session", f"'{row.get('session')}' is not a session number (1 to {MAX_SESSION_NUMBER}).")
            continue
        try:
            when = date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            bad("date", f"'{row.get('date')}' is not a date in the form YYYY-MM-DD.")
            continue
        if problem := date_problem(when):
            bad("date", problem)
            continue
        if text_problems:
            continue
        who = external_id or patient
        key = (_identity(patient, external_id), number)
        entry = sessions.get(key)
        if entry is None:
            entry = sessions[key] = _SessionRows(patient, external_id, number, when, line)
        elif is_wide:
            bad("session", f"session {number} of {who} appears twice (first on line {entry.line}).")
            continue
        elif entry.date != when:
            bad(
                "date",
                f"session {number} of {who} has date {entry.date} on line {entry.line}, here {when}.",
            )
            continue
        elif (entry.patient or external_id) != (patient or external_id):
            bad("patient", _two_labels(entry, patient or external_id, bool(patient)))
            continue

        if is_wide:
            cells = [(c, *wide_columns[c], row.get(c) or "") for c in wide_columns]
        else:
            measure = (row.get("measure") or "").strip() or ALLIANCE
            if measure not in instruments:
                bad("measure", f"'{measure}' is not a measure here ({', '.join(instruments)}).")
                continue
            cells = [("item", measure, _int(row.get("item") or ""), row.get("value") or "")]
        for column, measure, item, raw in cells:
            instrument = instruments[measure]
            if item is None or item not in item_numbers[measure]:
                bad(
                    column,
                    f"'{row.get('item')}' is not an item of {_name(instrument)} "
                    f"(1 to {max(item_numbers[measure])}).",
                )
                continue
            if is_wide and not raw.strip():
                continue  # a missing answer in a session row
            value = _int(raw)
            value_column = column if is_wide else "value"
            given = entry.answers.setdefault(measure, {})
            if value is None or answer_problem(
                instrument=instrument, item_numbers=item_numbers[measure], number=item, value=value
            ):
                bad(
                    value_column,
                    f"'{raw}' is not an answer on the {instrument.scale_min}-{instrument.scale_max} scale"
                    + ("." if measure == ALLIANCE else f" of {_name(instrument)}."),
                )
            elif item in given:
                where = "" if measure == ALLIANCE else f" of {_name(instrument)}"
                bad("item", f"item {item}{where} of session {number} for {who} is given twice.")
            else:
                given[item] = value
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
    instrument = instrument or (
        Instrument.objects.filter(rater="patient", kind=Instrument.Kind.ALLIANCE)
        .order_by("code", "-version")
        .first()
    )
    if instrument is None:
        raise ApplicationError("No patient-rated instrument is loaded; run load_instrument first.")
    instruments = {ALLIANCE: instrument, **outcome_instruments()}
    needed = {measure: answers_needed(i, require_all=False) for measure, i in instruments.items()}

    problems: list[str] = []
    text = file if isinstance(file, io.TextIOBase) else io.StringIO("".join(file))
    rows = _parse(csv.DictReader(text), instruments=instruments, problems=problems)
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
        who = r.external_id or r.patient
        for measure, given in r.answers.items():
            what = "" if measure == ALLIANCE else f" {_name(instruments[measure])}"
            if len(given) < needed[measure]:
                total = len(instruments[measure].items.all())
                problems.append(
                    f"Line {r.line}: session {r.number} of {who} has only {len(given)} of {total}{what} "
                    f"answers; at least {needed[measure]} are needed for a total score."
                )
        patient = patients.get(r.key)
        episode = open_episodes.get(patient.pk) if patient else None
        session = existing_sessions.get((episode.pk, r.number)) if episode else None
        answered = (
            {resp.measure for resp in session.responses.all() if resp.rater == "patient"}
            if session
            else set()
        )
        for measure in sorted(answered & set(r.answers)):
            what = "" if measure == ALLIANCE else f" {_name(instruments[measure])}"
            problems.append(f"Line {r.line}: session {r.number} of {who} already has a{what} response.")
    if problems:
        raise ApplicationError(
            f"Nothing was imported: {len(problems)} problem(s) found. Fix them and import the whole file again.",
            problems=problems[:MAX_PROBLEMS],
        )

    now = timezone.now()
    with transaction.atomic():
        episodes: dict[tuple[str, str], Episode] = {}
        patients_created = 0
        for r in sorted(rows, key=lambda r: r.date):
            key = r.key
            if key in episodes:
                continue
            patient = patients.get(key)
            if patient is None:
                patient = Patient.objects.create(
                    clinic=clinic,
                    label=r.label,
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
                episode=episodes[r.key],
                number=r.number,
                date=r.date,
                status=Session.Status.HELD,
            )
            for r in rows
            if (episodes[r.key].pk, r.number) not in existing_sessions
        ]
        Session.objects.bulk_create(new_sessions, batch_size=1000)
        sessions = {
            (s.episode_id, s.number): s for s in Session.objects.filter(episode__in=episodes.values())
        }
        # The one write path for answers: it stores them and analyses every episode on commit.
        responses = [
            response
            for measure, measured in instruments.items()
            for response in responses_store(
                instrument=measured,
                entries=[
                    ResponseEntry(
                        session=sessions[(episodes[r.key].pk, r.number)],
                        answers=r.answers[measure],
                        source=source,
                        submitted_at=now,
                    )
                    for r in rows
                    if measure in r.answers
                ],
                require_all=False,
            )
        ]
    return ImportResult(
        patients_created,
        len(new_sessions),
        len(responses),
        sum(len(given) for r in rows for given in r.answers.values()),
    )


def _name(instrument: Instrument) -> str:
    return (
        instrument.translation("en").name if instrument.kind == Instrument.Kind.OUTCOME else "the instrument"
    )


def _existing_patients(
    *, clinic: Clinic, rows: list[_SessionRows], problems: list[str]
) -> dict[tuple[str, str], Patient]:
    """Match file rows to the clinic's patients: by external id when given, else by label.

    The two kinds of key never mix (``_SessionRows.key``). A file is refused, line and column
    named, where one text names one patient by label and another by external id, where one
    external id comes with two labels or one label with two identities, or where a new patient's
    label or external id is another patient's external id or label in the clinic: such a file is
    a shifted column or a slip far more often than a clinic's intent, and a misfiled answer puts
    one patient's flags on another's page (docs/import.md).
    """
    texts = {r.label for r in rows} | {r.external_id for r in rows if r.external_id}
    by_external_id = {p.external_id: p for p in Patient.objects.filter(clinic=clinic, external_id__in=texts)}
    by_label = {p.label: p for p in Patient.objects.filter(clinic=clinic, label__in=texts)}
    found: dict[tuple[str, str], Patient] = {}
    first_with_label: dict[str, _SessionRows] = {}
    first_with_external_id: dict[str, _SessionRows] = {}
    for r in rows:
        label_column = "patient" if r.patient else "external_id"
        same_label = first_with_label.get(r.label)
        same_external_id = first_with_external_id.get(r.external_id) if r.external_id else None
        named_as_external_id = first_with_external_id.get(r.label)
        named_as_label = first_with_label.get(r.external_id) if r.external_id else None
        problem = ""
        # In the file: each patient always named the same way, and no text naming two patients.
        if same_external_id is not None and same_external_id.label != r.label:
            problem, label_column = _two_labels(same_external_id, r.label, bool(r.patient)), "patient"
        elif same_label is not None and same_label.key != r.key:
            problem = (
                f"label '{r.label}' has {_external_id(same_label)} on line {same_label.line} and "
                f"{_external_id(r)} here; every row of a patient needs the same label and external id."
            )
        elif named_as_label is not None and named_as_label.key != r.key:
            problem, label_column = (
                f"external id '{r.external_id}' is the label of another patient on line "
                f"{named_as_label.line}; {_ONE_TEXT}",
                "external_id",
            )
        elif named_as_external_id is not None and named_as_external_id.key != r.key:
            problem = (
                f"label '{r.label}' is the external id of another patient on line "
                f"{named_as_external_id.line}; {_ONE_TEXT}"
            )
        first_with_label.setdefault(r.label, r)
        if r.external_id:
            first_with_external_id.setdefault(r.external_id, r)
        # Against the clinic's patients.
        if not problem and r.external_id:
            matched = by_external_id.get(r.external_id)
            labelled = by_label.get(r.label)
            if matched is not None:
                found[r.key] = matched
                if r.patient and labelled is not None and labelled != matched:
                    problem = (
                        f"label '{r.patient}' belongs to another patient of the clinic than external id "
                        f"'{r.external_id}' ({matched.label})."
                    )
            elif labelled is not None and labelled.external_id:
                problem = (
                    f"label '{r.label}' belongs to another patient of the clinic "
                    f"(external id {labelled.external_id})."
                )
            elif labelled is not None:
                problem = (
                    f"a patient labelled '{r.label}' exists without external id; add the external id "
                    "to that patient first, or leave the column empty."
                )
            elif (owner := by_label.get(r.external_id)) is not None:
                label_column = "external_id"
                problem = (
                    f"external id '{r.external_id}' is the label of a patient of the clinic who has "
                    + (
                        f"external id '{owner.external_id}'; {_ONE_TEXT}"
                        if owner.external_id
                        else "no external id; to add these answers to that patient, leave external_id empty "
                        f"and put {r.external_id} in the patient column, or give the patient this external "
                        "id first."
                    )
                )
            elif r.label in by_external_id:
                problem = (
                    f"label '{r.label}' is the external id of patient {by_external_id[r.label].label} "
                    f"of the clinic; {_ONE_TEXT}"
                )
        elif not problem:
            matched = by_label.get(r.label)
            if matched is not None:
                found[r.key] = matched
            other = by_external_id.get(r.label)
            if other is not None and other != matched:
                problem = (
                    f"label '{r.label}' is the external id of patient {other.label} of the clinic; to "
                    f"add these answers to that patient, put {r.label} in the external_id column."
                )
        if problem:
            problems.append(f"Line {r.line}, column {label_column}: {problem}")
    return found


_ONE_TEXT = "one text names one patient, as a label or as an external id."


def _external_id(r: _SessionRows) -> str:
    return f"external id '{r.external_id}'" if r.external_id else "no external id"


def _two_labels(first: _SessionRows, label: str, given: bool) -> str:
    here = f"'{label}'" if given else "no label"
    return (
        f"external id '{first.external_id}' has label '{first.label}' on line {first.line} and {here} "
        "here; every row of a patient needs the same label and external id."
    )


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
