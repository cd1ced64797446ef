"""The clinic's settings page."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.db import transaction
from django.http import (
    HttpResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from clinics import services as clinic_services
from clinics.permissions import clinic_for_admin
from monitoring import tasks
from monitoring.clinic_admin.forms import (
    ClinicSettingsForm,
)
from monitoring.clinic_admin.report import ReportFilters, clinic_report
from monitoring.security.decorators import AuthenticatedRequest, staff_required


@staff_required
@require_http_methods(["GET", "POST"])
def clinic_settings(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    budget_before = clinic.sensitivity
    form = ClinicSettingsForm(request.POST or None, instance=clinic)
    if request.method == "POST" and form.is_valid():
        clinic_services.clinic_settings_update(
            clinic=clinic, **{name: form.cleaned_data[name] for name in ClinicSettingsForm.Meta.fields}
        )
        if clinic.sensitivity != budget_before:
            # The thresholds are calibrated to the budget with the clinic's estimate: make one
            # for the new budget (in the background where a worker runs).
            clinic_id = clinic.pk
            transaction.on_commit(lambda: tasks.clinic_estimate_refresh.enqueue(clinic_id))
        messages.success(
            request,
            "Settings saved. They apply from now on; flags already stored keep the rules they were computed with.",
        )
        return redirect("monitoring:admin-settings", slug=clinic.slug)
    today = date.today()
    seen = clinic_report(clinic=clinic, filters=ReportFilters(start=today - timedelta(days=364), end=today))
    return render(
        request,
        "clinic_admin/settings.html",
        {"clinic": clinic, "form": form, "seen": seen},
        status=400 if request.method == "POST" else 200,
    )
