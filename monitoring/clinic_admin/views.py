"""The clinic admin area: staff, patients, settings. Every view starts with
``clinic_for_admin``, which is 404 for anyone who is not an active admin of that clinic
(therapists included: they cannot tell an admin page from a missing one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, timedelta

import pandas as pd
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Membership, Patient, StaffInvitation
from clinics.selectors import clinic_for_admin
from monitoring import charts
from monitoring.clinic_admin import services as clinic_admin_services
from monitoring.clinic_admin.forms import (
    AuditFilterForm,
    ClinicSettingsForm,
    DateForm,
    EpisodeOpenForm,
    ExportForm,
    PatientEditForm,
    PatientForm,
    ReportFilterForm,
    StaffInviteForm,
    TransferForm,
)
from monitoring.clinic_admin.report import SMALL_NUMBERS, ReportFilters, clinic_report
from monitoring.clinic_admin.selectors import patients_for_admin, patients_past_retention, staff_for_clinic
from monitoring.exports import EXPORTS, ExportFilters, csv_stream
from monitoring.exports import services as export_services
from monitoring.security.audit import access_log, access_log_list, entry_write
from monitoring.security.audit_trail import AuditFilters, audit_describe, audit_entries
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required, staff_required

AUDIT_PAGE = 100  # entries per page of the audit trail


@staff_required
def admin_home(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    return redirect("monitoring:admin-patients", slug=clinic_for_admin(user=request.user, slug=slug).slug)


@staff_required
@recent_sign_in_required
@require_http_methods(["GET", "POST"])
def staff(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form = StaffInviteForm(request.POST or None)
    new_link = ""
    failed = request.method == "POST"
    if request.method == "POST" and form.is_valid():
        try:
            invitation, new_link = clinic_services.staff_invite(
                clinic=clinic,
                invited_by=request.user,
                join_url=lambda token: request.build_absolute_uri(reverse("monitoring:join", args=[token])),
                **form.cleaned_data,
            )
            messages.success(
                request, f"Invitation sent to {invitation.email}. The link below works once, for 7 days."
            )
            form, failed = StaffInviteForm(), False
        except ApplicationError as error:
            form.add_error(None, error.message)
    memberships = staff_for_clinic(clinic=clinic)
    pending = clinic.staff_invitations.filter(accepted_at=None, revoked_at=None)
    return render(
        request,
        "clinic_admin/staff.html",
        {
            "clinic": clinic,
            "form": form,
            "memberships": memberships,
            "pending": pending,
            "new_link": new_link,
            "roles": Membership.Role.choices,
        },
        status=400 if failed else 200,
    )


@staff_required
@recent_sign_in_required
@require_POST
def staff_action(request: AuthenticatedRequest, slug: str, code: str, action: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    membership = get_object_or_404(Membership.objects.select_related("user"), clinic=clinic, code=code)
    try:
        if action == "role":
            clinic_services.membership_set_role(
                membership=membership, role=request.POST.get("role", ""), by=request.user
            )
            messages.success(
                request, f"{membership.user.get_full_name()} is now {membership.get_role_display().lower()}."
            )
        elif action == "deactivate":
            ended = clinic_services.membership_deactivate(membership=membership, by=request.user)
            messages.success(
                request,
                f"{membership.user.get_full_name()} no longer has access; {ended} signed-in session(s) ended.",
            )
        elif action == "sign-out":
            ended = clinic_services.user_sessions_end_by_admin(membership=membership, by=request.user)
            messages.success(
                request,
                f"{membership.user.get_full_name()} was signed out everywhere: {ended} session(s) ended.",
            )
        else:
            raise ApplicationError("Unknown action.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("monitoring:admin-staff", slug=clinic.slug)


@staff_required
@recent_sign_in_required
@require_POST
def staff_invitation_revoke(request: AuthenticatedRequest, slug: str, code: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    invitation = get_object_or_404(StaffInvitation, clinic=clinic, code=code)
    StaffInvitation.objects.filter(pk=invitation.pk, accepted_at=None).update(revoked_at=timezone.now())
    messages.success(request, f"The invitation for {invitation.email} has been withdrawn.")
    return redirect("monitoring:admin-staff", slug=clinic.slug)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """Accept a staff invitation: choose a password (or confirm an existing account's)."""
    try:
        invitation = clinic_services.staff_invitation_for_token(token=token)
    except ApplicationError as error:
        return render(request, "clinic_admin/join_problem.html", {"message": error.message}, status=410)
    problems: list[str] = []
    if request.method == "POST":
        password = request.POST.get("password", "")
        if password != request.POST.get("password_again", password):
            problems = ["The two passwords differ."]
        else:
            try:
                user = clinic_services.staff_invitation_accept(
                    token=token, password=password, name=request.POST.get("name", "")
                )
            except ApplicationError as error:
                problems = error.problems or [error.message]
            else:
                if Authenticator.objects.filter(user=user).exists():
                    # An existing colleague: signing in includes their authenticator code.
                    messages.success(
                        request, f"You have joined {invitation.clinic.name}. Please sign in to continue."
                    )
                    return redirect("account_login")
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                # They chose their password a moment ago: setting up the authenticator app, which
                # comes next, does not ask for it again.
                record_authentication(request, user, method="password", reauthenticated=True)
                messages.success(request, f"Welcome to {invitation.clinic.name}.")
                return redirect("monitoring:caseload")  # then two-factor set-up (MfaRequiredMiddleware)
    existing = Membership.objects.filter(user__email__iexact=invitation.email).exists()
    return render(
        request,
        "clinic_admin/join.html",
        {"invitation": invitation, "problems": problems, "existing": existing},
        status=400 if problems else 200,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def patients(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form = PatientForm(
        request.POST or None,
        clinic=clinic,
        initial={"language": clinic.default_language, "started_on": date.today()},
    )
    if request.method == "POST" and form.is_valid():
        try:
            patient = clinic_services.patient_create(
                clinic=clinic,
                therapist=clinic.memberships.get(user_id=form.cleaned_data["therapist"]).user,
                **{
                    k: form.cleaned_data[k]
                    for k in ("label", "external_id", "language", "contact_email", "contact_phone")
                },
            )
            clinic_services.episode_open(
                patient=patient,
                started_on=form.cleaned_data["started_on"],
                treatment=form.cleaned_data["treatment"],
            )
            messages.success(
                request,
                f"{patient.label} added, with an episode of care from {form.cleaned_data['started_on']:%d %b %Y}.",
            )
            return redirect("monitoring:admin-patient", slug=clinic.slug, code=patient.code)
        except ApplicationError as error:
            form.add_error(None, error.message)
    show = request.GET.get("show", "active")
    listing = patients_for_admin(clinic=clinic, active=show != "discharged", query=request.GET.get("q", ""))
    access_log_list(actor=request.user, what="admin patient list", patients=listing, path=request.path)
    return render(
        request,
        "clinic_admin/patients.html",
        {
            "clinic": clinic,
            "form": form,
            "patients": listing,
            "show": show,
            "query": request.GET.get("q", ""),
            "past_retention": patients_past_retention(clinic=clinic, today=date.today()).count(),
        },
        status=400 if request.method == "POST" else 200,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def patient(request: AuthenticatedRequest, slug: str, code: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    record = get_object_or_404(Patient.objects.select_related("therapist"), clinic=clinic, code=code)
    access_log(actor=request.user, instance=record, what="admin patient page", path=request.path)
    edit = PatientEditForm(request.POST if request.POST.get("form") == "edit" else None, instance=record)
    transfer = TransferForm(
        request.POST if request.POST.get("form") == "transfer" else None,
        clinic=clinic,
        current=record.therapist,
        initial={"on": date.today()},
    )
    open_form = EpisodeOpenForm(
        request.POST if request.POST.get("form") == "open" else None, initial={"started_on": date.today()}
    )
    close_form = DateForm(
        request.POST if request.POST.get("form") in ("close", "discharge") else None,
        initial={"on": date.today()},
    )
    if request.method == "POST":
        action = request.POST.get("form")
        try:
            if action == "edit" and edit.is_valid():
                clinic_services.patient_update(
                    patient=record, **{k: edit.cleaned_data[k] for k in edit.Meta.fields}
                )
                messages.success(request, "Saved.")
            elif action == "transfer" and transfer.is_valid():
                therapist = clinic.memberships.get(user_id=transfer.cleaned_data["therapist"]).user
                clinic_services.patient_transfer(
                    patient=record, therapist=therapist, on=transfer.cleaned_data["on"]
                )
                messages.success(
                    request,
                    f"{record.label} now sees {therapist.get_full_name()}; the earlier episode is kept.",
                )
            elif action == "open" and open_form.is_valid():
                clinic_services.episode_open(patient=record, **open_form.cleaned_data)
                messages.success(request, "A new episode of care is open.")
            elif action == "close" and close_form.is_valid():
                current = record.episodes.filter(ended_on=None).first()
                if current is None:
                    raise ApplicationError("There is no open episode to close.")
                clinic_services.episode_close(episode=current, on=close_form.cleaned_data["on"])
                messages.success(request, "The episode of care is closed.")
            elif action == "discharge" and close_form.is_valid():
                clinic_services.patient_discharge(patient=record, on=close_form.cleaned_data["on"])
                messages.success(request, f"{record.label} is discharged. All their data stays.")
            else:
                raise ApplicationError("Please correct the form below.")
            return redirect("monitoring:admin-patient", slug=clinic.slug, code=record.code)
        except ApplicationError as error:
            messages.error(request, error.message)
    return render(
        request,
        "clinic_admin/patient.html",
        {
            "clinic": clinic,
            "patient": record,
            "edit": edit,
            "transfer": transfer,
            "open_form": open_form,
            "close_form": close_form,
            "episodes": record.episodes.select_related("therapist").order_by("-started_on"),
        },
        status=400 if request.method == "POST" else 200,
    )


@staff_required
@recent_sign_in_required
@require_POST
def patient_erase(request: AuthenticatedRequest, slug: str, code: str) -> HttpResponse:
    """Right to erasure: irreversible, so it asks for a recent sign-in and the label typed again."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    record = get_object_or_404(Patient, clinic=clinic, code=code)
    label = record.label
    try:
        counts = clinic_admin_services.patient_erase(
            patient=record, by=request.user, confirm=request.POST.get("confirm", "")
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("monitoring:admin-patient", slug=clinic.slug, code=code)
    messages.success(
        request,
        f"{label} was erased: {counts['sessions']} session(s) and {counts['answers']} answer(s) removed, "
        f"with every identifier, and {counts['export_files']} earlier export file(s) that might hold them. "
        "The audit trail records the erasure, not the data.",
    )
    return redirect("monitoring:admin-patients", slug=clinic.slug)


def _audit_filters(request: HttpRequest) -> tuple[AuditFilterForm, AuditFilters]:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, AuditFilters(**form.cleaned_data)
    return form, AuditFilters()


@staff_required
@require_GET
def audit(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The clinic's audit trail: who read or changed what, when (UTC) and from where."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form, filters = _audit_filters(request)
    page = Paginator(audit_entries(clinic=clinic, filters=filters), AUDIT_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(entry, audit_describe(entry)) for entry in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "clinic_admin/audit.html",
        {"clinic": clinic, "form": form, "page": page, "rows": rows, "query": query.urlencode()},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@staff_required
@recent_sign_in_required(allow_get=False)
@require_GET
def audit_export(request: AuthenticatedRequest, slug: str) -> StreamingHttpResponse:
    """The trail as CSV (same filters as the page). The export is itself audited."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form, filters = _audit_filters(request)
    entry_write(
        instance=clinic,
        actor=request.user,
        action=LogEntry.Action.ACCESS,
        text=f"Audit trail exported by {request.user.email}",
        data={"event": "audit export", "filters": {k: str(v) for k, v in form.data.items()}},
    )
    actions = dict(LogEntry.Action.choices)
    columns = ["time_utc", "who", "action", "record_type", "record", "description", "from_ip", "event"]

    def chunks() -> Iterator[pd.DataFrame]:
        rows: list[list[str]] = []
        for entry in audit_entries(clinic=clinic, filters=filters).iterator(chunk_size=2000):
            rows.append(
                [
                    entry.timestamp.astimezone(UTC).isoformat(timespec="seconds"),
                    entry.actor_email or "",
                    str(actions.get(entry.action, entry.action)),
                    entry.content_type.model if entry.content_type_id else "",
                    entry.object_repr,
                    audit_describe(entry),
                    entry.remote_addr or "",
                    str((entry.additional_data or {}).get("event", "")),
                ]
            )
            if len(rows) == 2000:
                yield pd.DataFrame(rows, columns=columns)
                rows = []
        yield pd.DataFrame(rows, columns=columns)

    response = StreamingHttpResponse(csv_stream(chunks(), columns=columns), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="bordin-audit-{clinic.slug}-{date.today():%Y%m%d}.csv"'
    )
    return response


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
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


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
                pseudonymise=data["pseudonymise"],
            )
            job = export_services.export_start(
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
    jobs = export_services.export_jobs_for_user(user=request.user, clinic=clinic, limit=20)
    return render(
        request,
        "clinic_admin/exports.html",
        {
            "clinic": clinic,
            "form": form,
            "jobs": jobs,
            "exports": EXPORTS,
            "running": any(j.status in ("queued", "running") for j in jobs),
        },
        status=400 if request.method == "POST" else 200,
    )


@staff_required
def export_download(request: AuthenticatedRequest, code: str) -> HttpResponseBase:
    job = export_services.export_job_get_for_user(user=request.user, code=code)
    try:
        path, filename, content_type = export_services.export_file(job=job, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from error
    response = FileResponse(path.open("rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
