"""Production refuses unsafe defaults: ``manage.py check --deploy`` fails on each setting that is
only safe on a developer's machine (docs/operations.md lists them and what to set instead).

The defaults stay as they are for ``make run`` (DEBUG, the console email and SMS backends, a local
``SITE_URL``); these checks are registered for deployment only, so ``check`` without ``--deploy``
(and runserver) stays quiet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.http.request import validate_host

#: Email backends that keep or print messages instead of sending them: each patient's address and
#: form link would end up in the log (console), in memory (locmem) or on disk (file), or nowhere.
UNSAFE_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend": "prints every message, address and link included, to the log",
    "django.core.mail.backends.locmem.EmailBackend": "keeps messages in memory and sends nothing",
    "django.core.mail.backends.filebased.EmailBackend": "writes every message, address and link included, to disk",
    "django.core.mail.backends.dummy.EmailBackend": "sends nothing",
}
UNSAFE_SMS_BACKENDS = {"monitoring.collection.messaging.ConsoleSmsBackend"}
LOCAL_HOSTS = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: str) -> bool:
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


@register(Tags.security, deploy=True)
def production_settings_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.DEBUG:
        messages.append(
            Error(
                "DEBUG is on.",
                hint="Unset DEBUG in production: its error pages show settings, queries and patient data.",
                id="bordin.E001",
            )
        )
    email = settings.EMAIL_BACKEND
    if not email or email in UNSAFE_EMAIL_BACKENDS:
        messages.append(
            Error(
                f"EMAIL_BACKEND is {email or 'empty'}, which "
                f"{UNSAFE_EMAIL_BACKENDS.get(email, 'is not a backend')}.",
                hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST, "
                "EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS (docs/operations.md).",
                id="bordin.E002",
            )
        )
    sms = settings.BORDIN_SMS_BACKEND
    if not sms or sms in UNSAFE_SMS_BACKENDS:
        messages.append(
            Error(
                f"SMS_BACKEND is {sms or 'empty'}: text messages would only be logged, never sent.",
                hint="Set SMS_BACKEND to the clinic's SMS gateway class, or to "
                "monitoring.collection.messaging.NoSmsBackend to offer no text messages.",
                id="bordin.E003",
            )
        )
    site = urlsplit(settings.SITE_URL)
    host = (site.hostname or "").lower()
    if site.scheme != "https" or _is_local(host):
        messages.append(
            Error(
                f"SITE_URL is {settings.SITE_URL or 'missing'}: the links sent to patients would "
                + ("not reach Bordin." if _is_local(host) else "carry their token unencrypted."),
                hint="Set SITE_URL to Bordin's public https:// address, e.g. https://bordin.example.org.",
                id="bordin.E004",
            )
        )
    elif not validate_host(host, settings.ALLOWED_HOSTS):
        messages.append(
            Warning(
                f"SITE_URL's host {host} is not in ALLOWED_HOSTS: every link sent to a patient would answer 400.",
                hint="Add it to ALLOWED_HOSTS.",
                id="bordin.W001",
            )
        )
    sender = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(" >").lower()
    if _is_local(sender):
        messages.append(
            Warning(
                f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL}: mail servers refuse or bin mail "
                "from a local address, so links would not arrive.",
                hint="Set DEFAULT_FROM_EMAIL to an address of the clinic's mail domain.",
                id="bordin.W002",
            )
        )
    return messages
