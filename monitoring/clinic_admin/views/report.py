"""The clinic report page: figures over a period, by therapist and treatment."""

from __future__ import annotations

from datetime import date, timedelta

from django.http import (
    HttpResponse,
)
from django.shortcuts import render

from clinics.permissions import clinic_for_admin
from monitoring import charts
from monitoring.clinic_admin.forms import (
    ReportFilterForm,
)
from monitoring.clinic_admin.report import SMALL_NUMBERS, ReportFilters, clinic_report
from monitoring.outcomes.selectors import MIN_RATE_EPISODES
from monitoring.security.decorators import AuthenticatedRequest, staff_required


@staff_required
def report(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Clinic-level figures over a period, filterable by therapist and treatment."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form = ReportFilterForm(request.GET or None, clinic=clinic)
    today = date.today()
    filters = ReportFilters(start=today - timedelta(days=364), end=today)  # the last 12 months
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = ReportFilters(
            start=data["start"] or filters.start,
            end=data["end"] or filters.end,
            therapist_id=data["therapist"] or None,
            treatment=data["treatment"] or "",
        )
    result = clinic_report(clinic=clinic, filters=filters)
    figures = {
        "completion": charts.completion_by_month(
            months=result.months, held=result.held_by_month, completed=result.completed_by_month
        ),
        "levels": charts.level_distribution(levels=result.levels),
    }
    return render(
        request,
        "clinic_admin/report.html",
        {
            "clinic": clinic,
            "form": form,
            "report": result,
            "figures": figures,
            "small": SMALL_NUMBERS,
            "small_outcomes": MIN_RATE_EPISODES,
            "outcome_groups": [
                ("all", "All finished episodes"),
                ("period", "By quarter of ending"),
                ("therapist", "By therapist"),
                ("treatment", "By treatment"),
            ],
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )
