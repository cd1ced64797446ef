from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """Staff accounts are created by clinic admins (invitations), never by open sign-up."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class MfaAdapter(DefaultMFAAdapter):
    """Staff keep their authenticator app: it may be replaced (set up again) but not removed,
    since two-factor sign-in is required to see patient data."""

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        return authenticator.type != Authenticator.Type.TOTP
