"""The patient's own words from the form's optional box ("Anything you would like your therapist
to know?"), for the patient and session pages. Free text a patient wrote to their therapist is
read only where it is shown, and every such read is audited on its own entry, naming the
sessions whose messages were shown (never the text), so "who read what DEMO-0019 wrote?" has an
answer. Exports never read it (tests/exports)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import User

from clinics.models import Patient, Session
from clinics.permissions import may_change
from monitoring.models import PatientMessage
from monitoring.security.audit import access_log


def patient_messages_read(
    *,
    user: User,
    patient: Patient,
    sessions: Iterable[Session] | Mapping[int, int],
    path: str,
    may_read: bool | None = None,
) -> dict[int, list[PatientMessage]]:
    """The patient's messages written for ``sessions`` (the caller has checked that ``user``
    may see ``patient``, whose sessions they are; or a mapping of their ids to their numbers),
    by session id, oldest first; the read is audited when there is one. The patient wrote to
    their therapist: the therapist and the clinic's admins read it, a supervisor (who may look at
    the patient, not act) does not (``may_read``, when the caller has already asked
    ``may_change``)."""
    if not (may_change(user=user, patient=patient) if may_read is None else may_read):
        return {}
    numbers = (
        dict(sessions)
        if isinstance(sessions, Mapping)
        else {session.pk: session.number for session in sessions}
    )
    found: dict[int, list[PatientMessage]] = {}
    for message in PatientMessage.objects.filter(
        session__in=list(numbers), session__episode__patient=patient
    ).order_by("submitted_at"):
        found.setdefault(message.session_id, []).append(message)
    if found:
        access_log(
            actor=user,
            instance=patient,
            what="patient's message",
            path=path,
            extra={
                "sessions": sorted(numbers[pk] for pk in found),
                "messages": sum(map(len, found.values())),
            },
        )
    return found
