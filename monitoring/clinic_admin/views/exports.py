"""The export page: start an export (run in the background where a worker is configured), follow
its progress, download the file (access-checked, audited).

While an export is queued or running, the page's list of recent exports asks for itself again
every 2 seconds (htmx, ``exports_recent``) and stops once none is; the page and the list share
one template (the ``jobs`` partial of clinic_admin/exports.html)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBase,
)
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from clinics.errors import ApplicationError
from clinics.models import Clinic
from clinics.permissions import clinic_for_admin
from monitoring.clinic_admin.forms import (
    ExportForm,
)
from monitoring.exports import EXPORTS, ExportFilters
from monitoring.exports import jobs as export_jobs
from monitoring.exports import services as export_services
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required, staff_required


@staff_required
@recent_sign_in_required
@require_http_methods(["GET", "POST"])
def exports(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Start an export (it runs in the background when a worker is configured) and list the
    clinic's recent ones with their progress and download links."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form = ExportForm(request.POST or None, clinic=clinic)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            filters = ExportFilters(
                start=data["start"],
                end=data["end"],
                therapist_id=data["therapist"],
                treatment=data["treatment"] or "",
                pseudonymise=data["pseudonymise"] or bool(data["study_key"]),
                pseudonym_key=data["study_key"],
                fhir_bundle=data["fhir_bundle"],
            )
            job = export_jobs.export_start(
                clinic=clinic,
                user=request.user,
                identifier=data["report"],
                fmt=data["format"],
                filters=filters,
            )
            messages.success(
                request, f"{EXPORTS[job.exporter].verbose_name} ({job.format.upper()}) requested."
            )
            return redirect("monitoring:admin-exports", slug=clinic.slug)
        except ApplicationError as error:
            form.add_error(None, error.message)
    return render(
        request,
        "clinic_admin/exports.html",
        {"form": form, **_recent(request, clinic)},
        status=400 if request.method == "POST" else 200,
    )


@staff_required
@require_GET
def exports_recent(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The export page's list of recent exports alone, which the page asks for every 2 seconds
    while an export is under way. 204 (htmx keeps what it shows) when nothing has changed since
    ``seen``, so that the list, a live region, is not replaced and read out again for nothing."""
    context = _recent(request, clinic_for_admin(user=request.user, slug=slug))
    if request.GET.get("seen") == context["jobs_state"]:
        return HttpResponse(status=204)
    return render(request, "clinic_admin/exports.html#jobs", context)


def _recent(request: AuthenticatedRequest, clinic: Clinic) -> dict[str, Any]:
    jobs = export_jobs.export_jobs_for_user(user=request.user, clinic=clinic, limit=20)
    state = "|".join(f"{j.code}:{j.status}:{j.progress}" for j in jobs)
    return {
        "clinic": clinic,
        "jobs": jobs,
        "exports": EXPORTS,
        "running": any(j.status in ("queued", "running") for j in jobs),
        "jobs_state": hashlib.sha256(state.encode()).hexdigest()[:16],
    }


@staff_required
@recent_sign_in_required(allow_get=False)  # the clinic's data leaves Bordin: as the API's download
def export_download(request: AuthenticatedRequest, code: str) -> HttpResponseBase:
    job = export_jobs.export_job_get_for_user(user=request.user, code=code)
    try:
        path, filename, content_type = export_services.export_file(job=job, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from error
    response = FileResponse(path.open("rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
