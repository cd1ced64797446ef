"""The e-mail digest: news of a therapist's caseload, for those who do not open Bordin every day.

A digest counts the patients with new attention rows (unread notifications of alarm flags) since
the last digest, per clinic, and links to sign in. It names no patient and says nothing about
anyone's care: e-mail is not a safe place for health data, and the caseload says who and why once
signed in. Safety answers are not waited for here: they are e-mailed the moment they arrive
(monitoring.collection.safety).

``manage.py send_digests`` (cron, hourly) sends what is due: daily digests at most every 20
hours, weekly ones every 6 days and 20 hours, and only when something is new. Each digest is
claimed by a conditional update of ``last_sent_at`` before it is sent, so two runs at once send
it once; a mail server error gives the claim back for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from clinics.models import Membership
from clinics.permissions import patients_visible_to
from monitoring.models import DigestSettings, Notification

logger = logging.getLogger(__name__)

#: How long after the last digest the next may go, by frequency (a little under a day or a week,
#: so an hourly cron at a fixed time does not drift by an hour a day).
DUE_AFTER = {
    DigestSettings.Frequency.DAILY: timedelta(hours=20),
    DigestSettings.Frequency.WEEKLY: timedelta(days=6, hours=20),
}
#: How far back the first digest of a person looks.
FIRST_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Digest:
    user: User
    since: datetime
    clinics: list[tuple[str, int]]  # clinic name, patients with news

    @property
    def subject(self) -> str:
        return "Bordin: news on your caseload"

    @property
    def body(self) -> str:
        lines = [
            f"{n} patient{'s' if n != 1 else ''} on your caseload at {name} "
            f"{'need' if n != 1 else 'needs'} attention"
            for name, n in self.clinics
        ]
        site = settings.SITE_URL.rstrip("/")
        return "\n\n".join(
            [
                f"Since {self.since:%-d %B}: " + "; ".join(lines) + ".",
                f"Sign in to see who and why: {site}{reverse('monitoring:caseload')}",
                "This message names no one and says nothing about anyone's care. To change how often it "
                f"comes, or to turn it off: {site}{reverse('monitoring:notification-settings')}",
            ]
        )


def digest_settings(*, user: User) -> DigestSettings:
    return DigestSettings.objects.get_or_create(user=user)[0]


def digest_settings_update(*, user: User, frequency: str) -> DigestSettings:
    if frequency not in DigestSettings.Frequency.values:
        from clinics.errors import ApplicationError

        raise ApplicationError("Choose how often the digest should come.", code="invalid")
    row = digest_settings(user=user)
    row.frequency = frequency
    row.save(update_fields=["frequency"])
    return row


def digest_for(*, user: User, since: datetime) -> Digest | None:
    """What is new for ``user`` since ``since``: patients with unread notifications, by clinic;
    None when nothing is."""
    counts = (
        Notification.objects.filter(
            user=user,
            read_at=None,
            created_at__gt=since,
            flag__episode__patient__in=patients_visible_to(user=user),
        )
        .values("flag__episode__patient__clinic__name")
        .annotate(patients=Count("flag__episode__patient", distinct=True))
        .order_by("flag__episode__patient__clinic__name")
    )
    clinics = [(row["flag__episode__patient__clinic__name"], row["patients"]) for row in counts]
    return Digest(user=user, since=since, clinics=clinics) if clinics else None


def digests_send(*, now: datetime | None = None) -> dict[str, int]:
    """Send every digest that is due; returns counts (sent, nothing new, failed)."""
    now = now or timezone.now()
    users = User.objects.filter(pk__in=Membership.objects.active().values("user"), is_active=True).exclude(
        email=""
    )
    done = {"sent": 0, "nothing_new": 0, "failed": 0}
    for user in users.order_by("pk"):
        row = digest_settings(user=user)
        due = DUE_AFTER.get(DigestSettings.Frequency(row.frequency))
        if due is None or (row.last_sent_at is not None and now - row.last_sent_at < due):
            continue
        since = row.last_sent_at or now - FIRST_WINDOW
        digest = digest_for(user=user, since=since)
        if digest is None:
            done["nothing_new"] += 1
            continue
        claimed = DigestSettings.objects.filter(pk=row.pk, last_sent_at=row.last_sent_at).update(
            last_sent_at=now
        )
        if not claimed:
            continue  # another run sent it
        try:
            send_mail(digest.subject, digest.body, settings.DEFAULT_FROM_EMAIL, [user.email])
        except Exception:
            logger.exception("could not e-mail the digest of user %s", user.pk)
            DigestSettings.objects.filter(pk=row.pk, last_sent_at=now).update(last_sent_at=row.last_sent_at)
            done["failed"] += 1
            continue
        done["sent"] += 1
    logger.info("digests: %(sent)s sent, %(nothing_new)s with nothing new, %(failed)s failed", done)
    return done
