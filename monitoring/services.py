"""Every write in the monitoring app goes through a function here (views and commands are thin)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Patient, Session
from monitoring import links, messaging, selectors
from monitoring.analytics import AnalysisConfig, analyse
from monitoring.audit import entry_write
from monitoring.instruments.definition import InstrumentDefinition, bundled_definitions, read_definition
from monitoring.models import (
    Answer,
    ClinicEstimate,
    EpisodeAnalysis,
    Flag,
    Instrument,
    InstrumentItem,
    InstrumentTranslation,
    Invitation,
    Notification,
    Rater,
    Response,
)


def instrument_load(*, definition: InstrumentDefinition, using: str = "default") -> tuple[Instrument, str]:
    """Store a validated definition; return the instrument and what happened.

    A new (code, version) is created. For a version already loaded, the structure must be
    identical (answers point at its items); then the wording for the definition's language is
    added or updated, which leaves every stored answer as it was.
    """
    with transaction.atomic(using=using):
        instrument = (
            Instrument.objects.using(using)
            .select_for_update()
            .filter(code=definition.code, version=definition.version)
            .first()
        )
        if instrument is None:
            instrument = Instrument.objects.using(using).create(
                code=definition.code,
                version=definition.version,
                rater=definition.rater,
                scale_min=definition.scale_min,
                scale_max=definition.scale_max,
                subscales=list(definition.subscales),
            )
            InstrumentItem.objects.using(using).bulk_create(
                InstrumentItem(
                    instrument=instrument, number=i.number, subscale=i.subscale, reverse_keyed=i.reverse_keyed
                )
                for i in definition.items
            )
            action = "created"
        else:
            if instrument_structure(instrument=instrument) != definition.structure():
                raise ApplicationError(
                    f"{definition.code} version {definition.version} is already loaded with a different "
                    "structure, and stored answers depend on it. Give the new structure a new version number."
                )
            action = "updated"
        _, created = InstrumentTranslation.objects.using(using).update_or_create(
            instrument=instrument,
            language=definition.language,
            defaults={
                "name": definition.name,
                "instructions": definition.instructions,
                "scale_labels": list(definition.scale_labels),
                "item_texts": {str(i.number): i.text for i in definition.items},
                "subscale_names": definition.subscale_names,
                "source": definition.source,
            },
        )
        if action == "updated" and created:
            action = "translated"
    return instrument, action


def instrument_structure(*, instrument: Instrument) -> dict[str, object]:
    return {
        "rater": instrument.rater,
        "scale": [instrument.scale_min, instrument.scale_max],
        "subscales": list(instrument.subscales),
        "items": [[i.number, i.subscale, i.reverse_keyed] for i in instrument.items.order_by("number")],
    }


def instruments_load_bundled(*, using: str = "default") -> None:
    for path in bundled_definitions():
        instrument_load(definition=read_definition(Path(path)), using=using)


def response_create(
    *,
    session: Session,
    instrument: Instrument,
    answers: Mapping[int, int],
    source: str,
    entered_by: User | None = None,
    submitted_at: datetime | None = None,
) -> Response:
    """Store one completed questionnaire with its answers, in one transaction, or nothing.

    Forms require every item; the database refuses a second response of the same rater for the
    session, which is what makes a double submission end with exactly one stored response.
    """
    items = {i.number: i for i in instrument.items.all()}
    problems = response_problems(instrument=instrument, items=items, answers=answers, require_all=True)
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems)
    try:
        with transaction.atomic():
            response = Response.objects.create(
                session=session,
                instrument=instrument,
                rater=instrument.rater,
                source=source,
                submitted_at=submitted_at or timezone.now(),
                entered_by=entered_by,
            )
            Answer.objects.bulk_create(
                Answer(response=response, item=items[number], value=value)
                for number, value in answers.items()
            )
    except IntegrityError as exc:
        if Response.objects.filter(session=session, rater=instrument.rater).exists():
            raise ApplicationError("A response for this session has already been received.") from exc
        raise
    return response


def response_problems(
    *,
    instrument: Instrument,
    items: Mapping[int, InstrumentItem],
    answers: Mapping[int, int],
    require_all: bool,
) -> list[str]:
    problems = []
    for number, value in sorted(answers.items()):
        if number not in items:
            problems.append(f"Item {number} is not part of {instrument}.")
        elif isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"Item {number}: the answer must be a whole number.")
        elif not instrument.scale_min <= value <= instrument.scale_max:
            problems.append(
                f"Item {number}: {value} is outside the scale ({instrument.scale_min} to {instrument.scale_max})."
            )
    if require_all:
        missing = sorted(set(items) - set(answers))
        if missing:
            problems.append("No answer for item " + ", ".join(map(str, missing)) + ".")
    return problems


# --- Patient form links ---------------------------------------------------------------------


def instrument_for_clinic(*, clinic: Clinic, rater: str = "patient") -> Instrument:
    """The newest version of the clinic's chosen instrument for ``rater``."""
    code = clinic.instrument_code if rater == "patient" else f"{clinic.instrument_code}-therapist"
    instrument = (
        Instrument.objects.filter(code=code, rater=rater).order_by("-version").first()
        or Instrument.objects.filter(rater=rater).order_by("code", "-version").first()
    )
    if instrument is None:
        raise ApplicationError(f"No {rater}-rated instrument is loaded; run load_instrument.")
    return instrument


def invitation_create(
    *, session: Session, created_by: User | None, channel: str = Invitation.Channel.LINK
) -> tuple[Invitation, str]:
    """A fresh one-time link for the session; older open links of the session stop working.

    Returns the invitation and its token (to show or send now; it can be derived again later).
    """
    if session.status != Session.Status.HELD:
        raise ApplicationError("Mark the session as held before creating a form link.")
    if Response.objects.filter(session=session, rater=Rater.PATIENT).exists():
        raise ApplicationError("The patient's answers for this session are already in.", code="used")
    clinic = session.episode.patient.clinic
    now = timezone.now()
    salt = links.new_salt()
    token = links.token_for_salt(salt)
    expires = now + timedelta(hours=clinic.link_expiry_hours)
    reminder = now + timedelta(hours=clinic.reminder_delay_hours) if clinic.reminder_delay_hours else None
    with transaction.atomic():
        session.invitations.filter(used_at=None, revoked_at=None).update(revoked_at=now)
        invitation = Invitation.objects.create(
            session=session,
            instrument=instrument_for_clinic(clinic=clinic),
            channel=channel,
            salt=salt,
            token_hash=links.token_hash(token),
            created_by=created_by,
            expires_at=expires,
            reminder_due_at=reminder if reminder and reminder < expires else None,
        )
    return invitation, token


def session_mark_held(*, session: Session, user: User) -> tuple[Invitation, str] | None:
    """Mark a session held; create its form link unless the answers are already in."""
    if session.status != Session.Status.HELD:
        session.status = Session.Status.HELD
        session.save(update_fields=["status"])
    if Response.objects.filter(session=session, rater=Rater.PATIENT).exists():
        return None
    return invitation_create(session=session, created_by=user)


def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, revoked_at=None, used_at=None).update(
        revoked_at=timezone.now()
    )


def invitation_send(*, invitation: Invitation, channel: str) -> None:
    """Send the link by email or text message to the patient's contact on file."""
    patient = invitation.session.episode.patient
    to = patient.contact_email if channel == "email" else patient.contact_phone
    if channel not in ("email", "sms"):
        raise ApplicationError("Choose email or text message.")
    if not to:
        what = "email address" if channel == "email" else "mobile number"
        raise ApplicationError(
            f"There is no {what} on file for {patient.label}. Add one on the patient's page."
        )
    invitation_problem = invitation_state(invitation=invitation)
    if invitation_problem:
        raise ApplicationError(invitation_problem.message, code=invitation_problem.code)
    messaging.form_link_send(
        channel=channel,
        to=to,
        clinic_name=patient.clinic.name,
        url=links.form_url(links.token_for_salt(invitation.salt)),
        language=patient.language,
        reminder=False,
    )
    Invitation.objects.filter(pk=invitation.pk).update(sent_to=channel)


def invitation_state(*, invitation: Invitation, now: datetime | None = None) -> ApplicationError | None:
    """Why the link cannot be used now, or None if it can. Messages are for the patient."""
    now = now or timezone.now()
    if invitation.used_at is not None:
        return ApplicationError("Your answers for this session have already been received.", code="used")
    if invitation.revoked_at is not None:
        return ApplicationError("This link has been replaced or withdrawn by the clinic.", code="revoked")
    if invitation.expires_at <= now:
        return ApplicationError("This link has expired.", code="expired")
    return None


def invitation_for_token(*, token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("session__episode__patient__clinic", "instrument")
        .prefetch_related("instrument__items")
        .filter(token_hash=links.token_hash(token))
        .first()
    )
    if invitation is None:
        raise ApplicationError("This link is not known.", code="unknown")
    return invitation


def reminders_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        Invitation.objects.filter(
            reminder_due_at__lte=now, reminder_sent_at=None, used_at=None, revoked_at=None, expires_at__gt=now
        )
        .exclude(sent_to="")
        .values_list("pk", flat=True)
    )


def reminder_send(*, invitation_id: int) -> bool:
    """Send the one reminder for an invitation, if it is still due; True if sent.

    The reminder is claimed with a conditional update first, so two workers (or a retry) can
    never send it twice.
    """
    now = timezone.now()
    claimed = Invitation.objects.filter(
        pk=invitation_id, reminder_sent_at=None, used_at=None, revoked_at=None, expires_at__gt=now
    ).update(reminder_sent_at=now)
    if not claimed:
        return False
    invitation = Invitation.objects.select_related("session__episode__patient__clinic").get(pk=invitation_id)
    patient = invitation.session.episode.patient
    to = patient.contact_email if invitation.sent_to == "email" else patient.contact_phone
    if not to:
        return False
    messaging.form_link_send(
        channel=invitation.sent_to,
        to=to,
        clinic_name=patient.clinic.name,
        url=links.form_url(links.token_for_salt(invitation.salt)),
        language=patient.language,
        reminder=True,
    )
    return True


def submission_create(*, invitation: Invitation, answers: Mapping[int, int]) -> Response:
    """Store the patient's answers through their link: exactly once, all or nothing.

    The link is claimed with a conditional UPDATE inside the same transaction as the response:
    of two concurrent submissions one claims it and the other finds it used, and if storing the
    answers fails the claim is rolled back with them, so the patient can try again.
    """
    problem = invitation_state(invitation=invitation)
    if problem:
        raise problem
    instrument = invitation.instrument
    items = {i.number: i for i in instrument.items.all()}
    problems = response_problems(instrument=instrument, items=items, answers=answers, require_all=True)
    if problems:
        raise ApplicationError("Some answers are missing or not valid.", problems=problems, code="invalid")
    now = timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, used_at=None, revoked_at=None, expires_at__gt=now
        ).update(used_at=now)
        if not claimed:
            invitation.refresh_from_db()
            raise invitation_state(invitation=invitation, now=now) or ApplicationError(
                "This link cannot be used.", code="unknown"
            )
        response = response_create(
            session=invitation.session,
            instrument=instrument,
            answers=answers,
            source=Response.Source.TABLET
            if invitation.channel == Invitation.Channel.TABLET
            else Response.Source.LINK,
            submitted_at=now,
        )
    return response


# --- Analysis and flags -----------------------------------------------------------------------

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
    scores = selectors.scores_for_episodes(episode_ids=episode_ids)
    now = timezone.now()
    parameters = analyse(scores, AnalysisConfig.preset(clinic.sensitivity)).clinic.stamped(now.isoformat())
    return ClinicEstimate.objects.create(
        clinic=clinic, estimated_at=now, parameters=parameters.to_dict(), patients_used=parameters.n_patients
    )


def clinic_estimate_current(*, clinic: Clinic) -> ClinicEstimate:
    return selectors.clinic_estimate_latest(clinic=clinic) or clinic_estimate_refresh(clinic=clinic)


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
    """Recompute one episode's analysis and store the flags of sessions not analysed before.

    Idempotent: running it twice stores nothing the second time. Returns the new flags; a new
    rupture, unrepaired rupture or decline also becomes a notification for the therapist.
    """
    episode = Episode.objects.select_related("patient__clinic").get(pk=episode_id)
    clinic = episode.patient.clinic
    estimate = clinic_estimate_current(clinic=clinic)
    config = selectors.analysis_config(clinic=clinic, estimate=estimate)
    scores = selectors.scores_for_episodes(episode_ids=[episode.pk])
    if scores.empty:
        return []
    events = analyse(scores, config).events
    config_snapshot = analysis_config_snapshot(config)
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
        state.flagged_through = max(state.flagged_through, int(scores["session"].max()))
        state.save(update_fields=["flagged_through", "updated_at"])
        # An import or a first analysis stores a whole history at once: only recent events are news.
        recent_from = state.flagged_through - selectors.ATTENTION_WINDOW
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


def response_enter(*, session: Session, rater: str, answers: Mapping[int, int], user: User) -> Response:
    """Staff entry of a completed form on the patient's behalf (source "staff"), or the
    therapist's own rating; the page (``views.response_enter``) and the API both call it.

    A filled-in form means the session took place, so it is marked held; open form links are
    withdrawn (the answers are in); the episode is analysed once the transaction commits. A
    second response of the same rater is refused with code ``used``.
    """
    clinic = session.episode.patient.clinic
    if rater == Rater.THERAPIST and not (
        clinic.therapist_rating_enabled and session.episode.therapist_id == user.pk
    ):
        raise PermissionDenied(
            "Only the patient's therapist can rate this session, when the clinic has it turned on."
        )
    instrument = instrument_for_clinic(clinic=clinic, rater=rater)
    try:
        with transaction.atomic():
            if session.status != Session.Status.HELD:
                session.status = Session.Status.HELD
                session.save(update_fields=["status"])
            response = response_create(
                session=session,
                instrument=instrument,
                answers=answers,
                source=Response.Source.STAFF,
                entered_by=user,
            )
    except ApplicationError as error:
        if not error.problems and Response.objects.filter(session=session, rater=rater).exists():
            raise ApplicationError(error.message, code="used") from error
        raise
    if rater == Rater.PATIENT:
        Invitation.objects.filter(session=session, used_at=None, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        from monitoring import tasks  # tasks import this module

        episode_id = session.episode_id
        transaction.on_commit(lambda: tasks.episode_analyse.enqueue(episode_id))
    return response


# --- Erasure -----------------------------------------------------------------------------------


def patient_erase(*, patient: Patient, by: User, confirm: str) -> dict[str, int]:
    """Right to erasure: remove the patient, every episode, session, answer, flag and link, and
    every identifier (label, record number, contact details). Irreversible.

    ``confirm`` must repeat the patient's label, so that a slip of the mouse erases nothing. The
    clinic's estimate is recomputed without the patient, so that clinic-level figures stay
    consistent with the data that remains. The erasure is audited with who, when and how much was
    removed, never the erased data (the patient's random code is kept: it identifies no one once
    the patient row is gone, and it links the earlier read entries to this erasure).
    """
    if confirm.strip() != patient.label:
        raise ApplicationError(
            "To erase, type the patient's label exactly as shown. Nothing was erased.",
            problems=["This does not match the patient's label."],
            code="not_confirmed",
        )
    clinic = patient.clinic
    code = str(patient.code)
    sessions = Session.objects.filter(episode__patient=patient)
    responses = Response.objects.filter(session__in=sessions)
    counts = {
        "episodes": Episode.objects.filter(patient=patient).count(),
        "sessions": sessions.count(),
        "responses": responses.count(),
        "answers": Answer.objects.filter(response__in=responses).count(),
        "flags": Flag.objects.filter(episode__patient=patient).count(),
    }
    with transaction.atomic():
        # The trail keeps one entry for the erasure, not one per deleted row with its contents.
        with disable_auditlog():
            patient.delete()  # cascades to episodes, sessions, responses, answers, flags, links
        entry_write(
            instance=clinic,
            actor=by,
            action=LogEntry.Action.DELETE,
            text=(
                f"Patient {code} erased by {by.email}: {counts['episodes']} episode(s), "
                f"{counts['sessions']} session(s), {counts['responses']} response(s), "
                f"{counts['answers']} answer(s), {counts['flags']} flag(s) removed"
            ),
            data={"event": "erasure", "patient": code, **counts},
        )
    clinic_estimate_refresh(clinic=clinic)
    # Finished export files may hold the patient: remove them (the jobs stay, marked as purged).
    from monitoring.export_services import export_files_purge

    counts["export_files"] = export_files_purge(older_than=timedelta(0), clinic=clinic)
    return counts
