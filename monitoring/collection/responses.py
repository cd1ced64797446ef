"""Storing completed questionnaires: the one write path for answers.

Every way answers arrive goes through :func:`responses_store`: the patient's link and the clinic
tablet (:func:`submission_create`), staff entry of a paper form and the therapist's own rating
(:func:`response_enter`), the CSV import (``collection.importing``), the API and the demo clinic.
It checks each answer against the instrument (its items and its scale), stores the responses and
their answers in one transaction (all or nothing), and schedules the analysis of every episode
whose patient ratings changed for when the transaction commits, so that stored flags and the
therapist's notifications follow every write, whatever its path.

The database refuses a second response of the same rater for a session
(``response_one_per_session_and_rater``): that, not a check before writing, is what makes a
double submission end with exactly one stored response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Session
from clinics.permissions import may_rate_session
from clinics.validation import check_text
from monitoring import tasks
from monitoring.analytics.scoring import MAX_MISSING_TOTAL
from monitoring.collection.invitations import invitation_instruments, invitation_state
from monitoring.collection.safety import safety_alerts_raise
from monitoring.instruments.measures import outcome_instruments
from monitoring.instruments.selectors import instrument_for_clinic
from monitoring.models import Answer, Instrument, InstrumentItem, Invitation, PatientMessage, Rater, Response
from monitoring.security.audit import entry_write

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResponseEntry:
    """One completed questionnaire to store: whose session, the answers (item number to value),
    and how it arrived."""

    session: Session
    answers: Mapping[int, int]
    source: str
    submitted_at: datetime | None = None
    entered_by: User | None = None


def answer_problem(*, instrument: Instrument, item_numbers: set[int], number: int, value: object) -> str:
    """Why one answer cannot be stored ("" if it can), for forms, the API and the import alike."""
    if number not in item_numbers:
        return f"Item {number} is not part of {instrument}."
    if isinstance(value, bool) or not isinstance(value, int):
        return f"Item {number}: the answer must be a whole number."
    if not instrument.scale_min <= value <= instrument.scale_max:
        return (
            f"Item {number}: {value} is outside the scale ({instrument.scale_min} to {instrument.scale_max})."
        )
    return ""


def answers_needed(instrument: Instrument, *, require_all: bool) -> int:
    """How many items must be answered: all on a form; on imported data enough for a total
    score (methods.md section 1: at most two of twelve missing; an outcome measure's own
    ``max_missing``, section 6.1)."""
    count = len(instrument.items.all())
    if require_all:
        return count
    allowed = (
        int(instrument.scoring.get("max_missing", 0)) if instrument.kind == "outcome" else MAX_MISSING_TOTAL
    )
    return max(1, count - allowed)


def response_problems(
    *,
    instrument: Instrument,
    items: Mapping[int, InstrumentItem],
    answers: Mapping[int, int],
    require_all: bool,
) -> list[str]:
    problems = [
        problem
        for number, value in sorted(answers.items())
        if (
            problem := answer_problem(
                instrument=instrument, item_numbers=set(items), number=number, value=value
            )
        )
    ]
    missing = sorted(set(items) - set(answers))
    if require_all and missing:
        problems.append("No answer for item " + ", ".join(map(str, missing)) + ".")
    elif len(answers) < answers_needed(instrument, require_all=False):
        problems.append(
            f"Only {len(answers)} of {len(items)} items are answered; at least "
            f"{answers_needed(instrument, require_all=False)} are needed for a total score."
        )
    return problems


def responses_store(
    *, instrument: Instrument, entries: Sequence[ResponseEntry], require_all: bool = True
) -> list[Response]:
    """Store completed questionnaires of ``instrument``, all or nothing, and schedule the analysis.

    ``require_all``: every item answered (forms, the API); False for imported data, where a few
    missing items are allowed (the score is prorated). Raises ``ApplicationError`` (code
    ``invalid``, one problem per bad answer) before writing anything, or (code ``used``) when a
    session already has this rater's response.
    """
    if not entries:
        return []
    items = {i.number: i for i in instrument.items.all()}
    problems: list[str] = []
    for entry in entries:
        found = response_problems(
            instrument=instrument, items=items, answers=entry.answers, require_all=require_all
        )
        prefix = f"Session {entry.session.number}: " if len(entries) > 1 else ""
        problems += [prefix + p for p in found]
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems, code="invalid")
    now = timezone.now()
    rows = [
        Response(
            session=entry.session,
            instrument=instrument,
            rater=instrument.rater,
            measure=instrument.measure,
            source=entry.source,
            submitted_at=entry.submitted_at or now,
            entered_by=entry.entered_by,
        )
        for entry in entries
    ]
    try:
        with transaction.atomic():
            if len(rows) == 1:
                rows[0].save()  # one form: django-auditlog records its creation with who entered it
                responses = rows
            else:
                responses = Response.objects.bulk_create(rows, batch_size=1000)
                _audit_bulk(responses)
            Answer.objects.bulk_create(
                (
                    Answer(response=response, item=items[number], value=value)
                    for response, entry in zip(responses, entries, strict=True)
                    for number, value in entry.answers.items()
                ),
                batch_size=2000,
            )
            safety_alerts_raise(
                instrument=instrument, responses=responses, answers=[dict(e.answers) for e in entries]
            )
            # The therapist's alliance rating too: the two-perspectives rule judges the pair.
            if instrument.kind == Instrument.Kind.ALLIANCE:
                analysis_schedule(episode_ids={entry.session.episode_id for entry in entries})
    except IntegrityError as exc:
        sessions = [entry.session for entry in entries]
        if Response.objects.filter(
            session__in=sessions, rater=instrument.rater, measure=instrument.measure
        ).exists():
            raise ApplicationError(
                "A response for this session has already been received.", code="used"
            ) from exc
        raise
    return responses


def _audit_bulk(responses: Sequence[Response]) -> None:
    """One audit entry per clinic for a batch (an import, the demo), naming the patients, instead
    of thousands of row entries."""
    by_clinic: dict[int, list[Response]] = {}
    for response in responses:
        by_clinic.setdefault(response.session.episode.patient.clinic_id, []).append(response)
    for clinic in Clinic.objects.filter(pk__in=by_clinic):
        batch = by_clinic[clinic.pk]
        actor = batch[0].entered_by
        sources = sorted({r.source for r in batch})
        entry_write(
            instance=clinic,
            actor=actor,
            action=LogEntry.Action.CREATE,
            text=f"{len(batch)} {batch[0].rater} response(s) stored ({', '.join(sources)})",
            data={
                "event": "responses stored",
                "responses": len(batch),
                "source": sources,
                "patients": sorted({str(r.session.episode.patient.code) for r in batch}),
            },
        )


def analysis_schedule(*, episode_ids: set[int]) -> None:
    """Analyse these episodes (store new flags, notify) once the current transaction commits."""
    ordered = sorted(episode_ids)
    if ordered:
        transaction.on_commit(lambda: _analysis_enqueue(ordered))


def _analysis_enqueue(episode_ids: list[int]) -> None:
    """Queue the analysis. The answers are committed by now: a queue that cannot take the task
    (Redis down with the RQ backend) must not turn the patient's stored submission into an error
    page. It is logged, and ``manage.py analyse_stale`` (cron) analyses the episodes later."""
    try:
        tasks.episodes_analyse.enqueue(episode_ids)
    except Exception as exc:
        logger.error(
            "could not queue the analysis of episode(s) %s (%s: %s); the answers are stored and "
            "manage.py analyse_stale will analyse them",
            episode_ids,
            type(exc).__name__,
            exc,
        )


def response_create(
    *,
    session: Session,
    instrument: Instrument,
    answers: Mapping[int, int],
    source: str,
    entered_by: User | None = None,
    submitted_at: datetime | None = None,
) -> Response:
    """Store one completed questionnaire with every item answered (see :func:`responses_store`)."""
    entry = ResponseEntry(
        session=session, answers=answers, source=source, submitted_at=submitted_at, entered_by=entered_by
    )
    return responses_store(instrument=instrument, entries=[entry])[0]


def submission_create(
    *,
    invitation: Invitation,
    answers: Mapping[int, int] | None = None,
    measures: Mapping[str, Mapping[int, int]] | None = None,
    message: str = "",
) -> Response:
    """Store the patient's answers through their link: exactly once, all or nothing.

    ``answers`` are the alliance form's (item number to value); ``measures`` the symptom
    measures' the link carries (measure code to its answers). Every questionnaire on the link
    must be complete. ``message`` is the optional box at the end of the form ("Anything you would
    like your therapist to know?"); blank is none. It is stored with the answers, so it shares
    their guarantees: once, or not at all. The link is claimed with a conditional UPDATE inside the same transaction as
    the responses: of two concurrent submissions one claims it and the other finds it used, and if
    storing the answers fails the claim is rolled back with them, so the patient can try again.
    Returns the first response stored (the alliance, when the link asks it).
    """
    problem = invitation_state(invitation=invitation)
    if problem:
        raise problem
    given = {"alliance": dict(answers or {}), **{code: dict(v) for code, v in (measures or {}).items()}}
    forms = invitation_instruments(invitation)
    asked = {instrument.measure for instrument in forms}
    problems = [f"This form does not ask {code}." for code in sorted(set(given) - asked) if given[code]]
    for instrument in forms:
        items = {i.number: i for i in instrument.items.all()}
        found = response_problems(
            instrument=instrument, items=items, answers=given.get(instrument.measure, {}), require_all=True
        )
        prefix = f"{instrument.translation('en').name}: " if len(forms) > 1 else ""
        problems += [prefix + p for p in found]
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems, code="invalid")
    message = message.replace("\r\n", "\n").strip()
    check_text(message, what="Your message", max_length=PatientMessage.MAX_LENGTH, multiline=True)
    now = timezone.now()
    source = (
        Response.Source.TABLET if invitation.channel == Invitation.Channel.TABLET else Response.Source.LINK
    )
    with transaction.atomic():
        claimed = Invitation.objects.usable(now).filter(pk=invitation.pk).update(used_at=now)
        if not claimed:
            invitation.refresh_from_db()
            raise invitation_state(invitation=invitation, now=now) or ApplicationError(
                "This link cannot be used.", code="unknown"
            )
        stored = [
            response_create(
                session=invitation.session,
                instrument=instrument,
                answers=given[instrument.measure],
                source=source,
                submitted_at=now,
            )
            for instrument in forms
        ]
        if message:
            PatientMessage.objects.create(
                session=invitation.session, invitation=invitation, text=message, submitted_at=now
            )
    return stored[0]


def response_enter(
    *, session: Session, rater: str, answers: Mapping[int, int], user: User, measure: str = "alliance"
) -> Response:
    """Staff entry of a completed form on the patient's behalf (source "staff"), or the
    therapist's own rating; the paper-entry page and the API both call it. ``measure`` is
    "alliance" or one of the clinic's symptom measures ("phq9").

    A filled-in alliance form means the session took place, so it is marked held. Open form links
    that ask what was just entered are withdrawn (the answers are in). A second response of the
    same rater and measure is refused with code ``used``.
    """
    if rater == Rater.THERAPIST and not may_rate_session(user=user, session=session):
        raise PermissionDenied(
            "Only the patient's therapist can rate this session, when the clinic has it turned on."
        )
    clinic = session.episode.patient.clinic
    if measure == "alliance":
        instrument = instrument_for_clinic(clinic=clinic, rater=rater)
    else:
        found = outcome_instruments([measure]) if rater == Rater.PATIENT else {}
        if measure not in found:
            raise ApplicationError(f"There is no patient-rated measure '{measure}' loaded.", code="invalid")
        instrument = found[measure]
    with transaction.atomic():
        if measure == "alliance" and session.status != Session.Status.HELD:
            session.status = Session.Status.HELD
            session.save(update_fields=["status"])
        response = response_create(
            session=session,
            instrument=instrument,
            answers=answers,
            source=Response.Source.STAFF,
            entered_by=user,
        )
        if rater == Rater.PATIENT:
            now = timezone.now()
            for invitation in Invitation.objects.open().filter(session=session):
                if measure in {i.measure for i in invitation_instruments(invitation)}:
                    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=now)
    return response
