from __future__ import annotations

from django.http import HttpRequest

from clinics.permissions import clinics_administered


def navigation(request: HttpRequest) -> dict[str, object]:
    """The clinics the signed-in user administers, for the header's Clinic link."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"admin_clinics": clinics_administered(user=user)}
