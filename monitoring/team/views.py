"""The team page: for a clinic's supervisors (their assigned therapists) and admins (every
therapist), how each therapist's flags are met, forms come in, sessions are missed and patients
drop out, this period against the last. Counts only, no patient named; audited like every read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from clinics.models import Membership
from clinics.permissions import clinic_for_team
from monitoring.security.audit import access_log
from monitoring.security.decorators import AuthenticatedRequest
from monitoring.team import selectors


@login_required
def team(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    clinic = clinic_for_team(user=request.user, slug=slug)
    period = request.GET.get("period", "")
    if period not in selectors.PERIODS:
        period = selectors.DEFAULT_PERIOD
    report = selectors.team_report(
        clinic=clinic, user=request.user, period=period, today=timezone.localdate()
    )
    access_log(
        actor=request.user,
        instance=clinic,
        what="team page",
        path=request.path,
        extra={"therapists": [str(r.membership.code) for r in report.rows if r.membership], "period": period},
    )
    supervisor = Membership.objects.supervisors().filter(user=request.user, clinic=clinic).exists()
    return render(
        request,
        "team/team.html",
        {
            "clinic": clinic,
            "report": report,
            "periods": [(key, words) for key, (words, _) in selectors.PERIODS.items()],
            "supervisor": supervisor,
            "long_open_days": selectors.LONG_OPEN_DAYS,
            "early_end_sessions": selectors.EARLY_END_SESSIONS,
            "lapsed_weeks": selectors.LAPSED_DAYS // 7,
            "small_numbers": selectors.SMALL_NUMBERS,
        },
    )
