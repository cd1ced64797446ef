"""Exports through the API: the reports, starting an export job, its status and its file."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.errors import ApplicationError
from clinics.models import Clinic
from monitoring.api import serializers as s
from monitoring.api.auth import (
    FirstRendererNegotiation,
    in_scope,
    require_recent_sign_in,
    scoped,
    user_of,
)
from monitoring.api.idempotency import IDEMPOTENCY_KEY, idempotent
from monitoring.api.views.base import CONFLICT, FHIR_JSON, ApiView, clinic_for, therapist_for, valid_input
from monitoring.exports import EXPORTS, ExportFilters
from monitoring.exports import jobs as export_jobs
from monitoring.exports import services as export_services
from monitoring.models import ExportJob


class ReportListApi(ApiView):
    @extend_schema(operation_id="exports_reports", responses=s.ReportOutput(many=True), tags=["exports"])
    def get(self, request: Request) -> Response:
        """The reports that can be exported, with their formats."""
        rows = self.page(request, [EXPORTS[k] for k in sorted(EXPORTS)])
        return self.paged(s.ReportOutput(rows, many=True).data)


def _export_jobs(request: Request) -> QuerySet[ExportJob]:
    jobs = ExportJob.objects.filter(clinic__in=Clinic.objects.administered_by(user_of(request)))
    return scoped(request, jobs, clinic_field="clinic_id").select_related("clinic")


class ExportListApi(ApiView):
    @extend_schema(operation_id="exports_list", responses=s.ExportJobOutput(many=True), tags=["exports"])
    def get(self, request: Request) -> Response:
        """Your clinic's export jobs, newest first (clinic admins; empty for anyone else)."""
        rows = self.page(request, _export_jobs(request).order_by("-created_at", "-pk"))
        return self.paged(s.ExportJobOutput(rows, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="exports_create",
        request=s.ExportInput,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: s.ExportJobOutput},
        tags=["exports"],
    )
    @idempotent()
    def post(self, request: Request) -> Response:
        """Start an export (clinic admins). Answers 202 with the job; poll its status until it is
        done (then download it) or failed (with the reason). A browser session needs a recent
        sign-in (401 `reauthentication_required`)."""
        require_recent_sign_in(request)
        data = valid_input(s.ExportInput, request.data)
        clinic = clinic_for(request, data.get("clinic"), admin_for="export its data")
        therapist = therapist_for(clinic, data["therapist"], "therapist") if data.get("therapist") else None
        filters = ExportFilters(
            start=data["start"],
            end=data["end"],
            therapist_id=therapist.user_id if therapist else None,
            treatment=data.get("treatment", ""),
            patient_code=str(data.get("patient") or ""),
            pseudonymise=data["pseudonymise"] or bool(data.get("study_key")),
            pseudonym_key=data.get("study_key", ""),
            fhir_bundle=data["fhir_bundle"],
        )
        job = export_jobs.export_start(
            clinic=clinic,
            user=user_of(request),
            identifier=data["report"],
            fmt=data["format"],
            filters=filters,
        )
        job.refresh_from_db()
        body = s.ExportJobOutput(job, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/exports/{job.code}/"}
        )


def _export_job(request: Request, code: str) -> ExportJob:
    job = export_jobs.export_job_get_for_user(user=user_of(request), code=code)
    in_scope(request, clinic_id=job.clinic_id)
    return job


class ExportDetailApi(ApiView):
    @extend_schema(operation_id="exports_retrieve", responses=s.ExportJobOutput, tags=["exports"])
    def get(self, request: Request, code: str) -> Response:
        """An export's status: queued, running (with progress), done (with its download URL) or
        failed (with the reason)."""
        return Response(s.ExportJobOutput(_export_job(request, code), context={"request": request}).data)


#: The 200 of a download, as the schema gives it: a file (a binary string) whose type is the
#: export's own, each listed. ``application/octet-stream`` comes first, for generated clients: they
#: read the body by the first media type they know, and by ``text/csv`` (read as text) or
#: ``application/fhir+json`` (parsed as JSON) they would mangle an XLSX or PDF, or not build at
#: all (openapi-python-client made ``BytesIO(response.text)``, a TypeError). The response carries
#: the real type (``Content-Type: text/csv``, ...); the export job's ``format`` says which.
DOWNLOAD_TYPES = (
    "application/octet-stream",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/pdf",
    FHIR_JSON,
)
DOWNLOAD = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The export's file, as an attachment (Content-Disposition names it). Its type is the "
    "format's: text/csv, the XLSX type, application/pdf or application/fhir+json.",
)


class ExportDownloadApi(ApiView):
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="exports_download",
        responses={**{(200, t): DOWNLOAD for t in DOWNLOAD_TYPES}, 409: CONFLICT},
        tags=["exports"],
    )
    def get(self, request: Request, code: str) -> FileResponse:
        """The finished export's file (audited). 409 while it is not done, or if it failed. A
        browser session needs a recent sign-in (401 `reauthentication_required`)."""
        require_recent_sign_in(request)
        job = _export_job(request, code)
        try:
            path, filename, content_type = export_services.export_file(job=job)
        except ApplicationError as error:
            raise ApplicationError(error.message, code="not_ready") from error
        export_services.export_audit(
            clinic=job.clinic,
            actor=user_of(request),
            identifier=job.exporter,
            fmt=job.format,
            filters=ExportFilters.from_json(job.filters),
            via=export_services.VIA_API,
            job=job,
            event="download",
        )
        response = FileResponse(
            path.open("rb"), as_attachment=True, filename=filename, content_type=content_type
        )
        response["Cache-Control"] = "no-store"
        return response
