"""Outgoing messages to patients: a link and the clinic's name, never clinical content.

Email goes through Django's email backend. Text messages go through a pluggable backend named
by the ``SMS_BACKEND`` setting: a class with ``send(to: str, body: str) -> None``. The default
writes to the log, like Django's console email backend (development only: ``check --deploy``
fails on it); a clinic plugs in its SMS gateway, or ``NoSmsBackend`` to offer no text messages.
"""

from __future__ import annotations

import logging
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import override

from clinics.errors import ApplicationError

logger = logging.getLogger(__name__)


class SmsBackend(Protocol):
    def send(self, to: str, body: str) -> None: ...


class ConsoleSmsBackend:
    outbox: list[tuple[str, str]] = []  # what was "sent", for tests and development

    def send(self, to: str, body: str) -> None:
        ConsoleSmsBackend.outbox.append((to, body))
        logger.info("SMS to %s***: %d characters", to[:4], len(body))


class NoSmsBackend:
    """For a clinic without an SMS gateway: sending a link by text message is refused with a
    message on the page (the link can be emailed or handed over instead)."""

    def send(self, to: str, body: str) -> None:
        raise ApplicationError(
            "Text messages are not set up for this clinic. Send the link by email or give it to the "
            "patient in person."
        )


def sms_backend() -> SmsBackend:
    return import_string(settings.BORDIN_SMS_BACKEND)()  # type: ignore[no-any-return]


def form_link_send(
    *, channel: str, to: str, clinic_name: str, url: str, language: str, reminder: bool
) -> None:
    with override(language):
        if reminder:
            subject = _("Reminder: a short question from %(clinic)s") % {"clinic": clinic_name}
            intro = _("A reminder: you have not yet answered the one-minute form about your last session.")
        else:
            subject = _("A short question from %(clinic)s") % {"clinic": clinic_name}
            intro = _("Please take one minute to tell us how your last session went.")
        body = "\n\n".join(
            [intro, url, _("The link works once. With thanks, %(clinic)s") % {"clinic": clinic_name}]
        )
    if channel == "email":
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    else:
        sms_backend().send(to, f"{clinic_name}: {url}")
