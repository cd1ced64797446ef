"""Clinic admin writes that reach beyond one model: erasure of a patient."""

from __future__ import annotations

import json
from datetime import timedelta

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from clinics.errors import ApplicationError
from clinics.models import Episode, Patient, Session
from monitoring import tasks
from monitoring.care.patient_page import patient_page_forget
from monitoring.care.rows import rows_cache_forget
from monitoring.flags.services import clinic_estimate_refresh
from monitoring.flags.snapshots import charts_cache_forget
from monitoring.models import (
    Answer,
    Flag,
    IdempotencyKey,
    Response,
)
from monitoring.security.audit import entry_write


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
    # The API keeps the first answer of an Idempotency-Key for a day (monitoring.api.idempotency):
    # those that speak of this patient (its code, label, episodes or sessions) go with it.
    identifiers = {code, patient.label, *(str(c) for c in sessions.values_list("code", flat=True))}
    identifiers |= {str(c) for c in Episode.objects.filter(patient=patient).values_list("code", flat=True)}
    stored_answers = [
        key.pk
        for key in IdempotencyKey.objects.filter(
            user__memberships__clinic=clinic, response__isnull=False
        ).distinct()
        if any(json.dumps(value) in json.dumps(key.response, cls=DjangoJSONEncoder) for value in identifiers)
    ]
    episode_ids = list(Episode.objects.filter(patient=patient).values_list("pk", flat=True))
    patient_id = patient.pk
    with transaction.atomic():
        IdempotencyKey.objects.filter(pk__in=stored_answers).delete()
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
    # The patient's rendered charts (cached by episode), caseload row and page; after the commit,
    # so that no read still seeing the patient writes them back (and each cache write checks).
    transaction.on_commit(lambda: charts_cache_forget(episode_ids))
    transaction.on_commit(lambda: rows_cache_forget([patient_id]))
    transaction.on_commit(lambda: patient_page_forget([patient_id]))
    # The other episodes' snapshots were computed with the estimate that included the patient.
    clinic_id = clinic.pk
    transaction.on_commit(lambda: tasks.clinic_snapshots_refresh.enqueue(clinic_id))
    # Finished export files may hold the patient: remove them (the jobs stay, marked as purged).
    from monitoring.exports.services import export_files_purge

    counts["export_files"] = export_files_purge(older_than=timedelta(0), clinic=clinic)
    return counts
