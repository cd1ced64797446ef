"""Safety first: a risk answer (PHQ-9 item 9 above 0) reaches a clinician at once.

:func:`safety_alerts_raise` runs inside the transaction that stores the answers (the one write
path, ``collection.responses``), so an alert exists exactly when the answers do. The therapist's
e-mail is sent when that transaction commits, in the same request: it does not wait behind the
background queue. The alert stays at the top of the caseload until a clinician records the
follow-up (:func:`safety_follow_up`), which is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinics.errors import ApplicationError
from clinics.models import Membership
from monitoring.instruments.measures import risk_answers
from monitoring.models import Instrument, Response, SafetyAlert

logger = logging.getLogger(__name__)


def safety_alerts_raise(
    *, instrument: Instrument, responses: Sequence[Response], answers: Sequence[dict[int, int]]
) -> list[SafetyAlert]:
    """Store an alert for every response with a risk answer, and e-mail the therapists once the
    transaction commits. Call inside the transaction that stores the responses."""
    if not instrument.scoring.get("risk_items"):
        return []
    labels = instrument.translation("en").scale_labels
    alerts = []
    for response, given in zip(responses, answers, strict=True):
        for item, value in risk_answers(instrument, given):
            alerts.append(
                SafetyAlert(
                    episode_id=response.session.episode_id,
                    session=response.session,
                    response=response,
                    item=item,
                    value=value,
                    answer_label=labels[value - instrument.scale_min],
                    raised_at=response.submitted_at,
                )
            )
            break  # one alert per form, whichever risk item
    if not alerts:
        return []
    SafetyAlert.objects.bulk_create(alerts)
    ids = [a.pk for a in SafetyAlert.objects.filter(response__in=[a.response for a in alerts])]
    transaction.on_commit(lambda: safety_notify(alert_ids=ids))
    return alerts


def safety_notify(*, alert_ids: Sequence[int]) -> None:
    """E-mail each alert's therapist (or, with none active, the clinic's admins), now.

    The message names no patient and no answer: it says that one of their patients needs them
    and links to the patient's page (a random code, no personal data)."""
    now = timezone.now()
    for alert in SafetyAlert.objects.filter(pk__in=alert_ids, notified_at=None).select_related(
        "episode__therapist", "episode__patient__clinic"
    ):
        clinic = alert.episode.patient.clinic
        therapist = alert.episode.therapist
        active = Membership.objects.active().filter(clinic=clinic, user=therapist).exists()
        recipients = [therapist.email] if active and therapist.email else []
        if not recipients:
            recipients = [
                m.user.email for m in Membership.objects.admins().filter(clinic=clinic) if m.user.email
            ]
        url = settings.SITE_URL + reverse("monitoring:patient", args=[alert.episode.patient.code])
        body = "\n\n".join(
            [
                _(
                    "A patient's answers today include a safety answer: thoughts of being better off dead or "
                    "of self-harm. Please look at it today and record what you did."
                ),
                url,
                _("This message names no one; sign in to Bordin to see who. %(clinic)s")
                % {"clinic": clinic.name},
            ]
        )
        try:
            send_mail(
                _("Safety alert: a patient needs you today"), body, settings.DEFAULT_FROM_EMAIL, recipients
            )
        except Exception:
            # The alert is stored and at the top of the caseload whatever the mail server does.
            logger.exception("could not e-mail safety alert %s", alert.pk)
            continue
        SafetyAlert.objects.filter(pk=alert.pk).update(notified_at=now)


def safety_follow_up(*, alert: SafetyAlert, user: User, follow_up: str, note: str) -> SafetyAlert:
    """Record what a clinician did about an alert; it then leaves the top of the caseload. The
    change is kept in the audit trail (django-auditlog) with who made it."""
    if follow_up not in SafetyAlert.FollowUp.values:
        raise ApplicationError(_("Choose what was done."), code="invalid")
    note = note.strip()
    if not note:
        raise ApplicationError(_("Write a short note of what was done and agreed."), code="invalid")
    if len(note) > 2000:
        raise ApplicationError(_("The note is too long (at most 2,000 characters)."), code="invalid")
    with transaction.atomic():
        locked = SafetyAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.followed_up_at is not None:
            raise ApplicationError(_("A follow-up has already been recorded for this alert."), code="used")
        locked.follow_up = follow_up
        locked.follow_up_note = note
        locked.followed_up_at = timezone.now()
        locked.followed_up_by = user
        locked.save(update_fields=["follow_up", "follow_up_note", "followed_up_at", "followed_up_by"])
    return locked
