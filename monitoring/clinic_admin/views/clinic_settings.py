"""The clinic's settings page."""

from __future__ import annotations

from django.contrib import messages
from django.http import (
    HttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from clinics import services as clinic_services
from clinics.permissions import clinic_for_admin
from monitoring.clinic_admin.forms import (
    ClinicSettingsForm,
)
from monitoring.security.decorators import AuthenticatedRequest, staff_required


@staff_required
@require_http_methods(["GET", "POST"])
def clinic_settings(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form = ClinicSettingsForm(request.POST or None, instance=clinic)
    if request.method == "POST" and form.is_valid():
        clinic_services.clinic_settings_update(
            clinic=clinic, **{name: form.cleaned_data[name] for name in ClinicSettingsForm.Meta.fields}
        )
        messages.success(
            request,
            "Settings saved. They apply from now on; flags already stored keep the rules they were computed with.",
        )
        return redirect("monitoring:admin-settings", slug=clinic.slug)
    return render(
        request,
        "clinic_admin/settings.html",
        {"clinic": clinic, "form": form},
        status=400 if request.method == "POST" else 200,
    )
