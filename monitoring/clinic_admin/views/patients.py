"""The admin's patient pages: the list with new patients, one patient's record (edit, transfer,
episodes, discharge) and erasure."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.http import (
    HttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Patient
from clinics.permissions import clinic_for_admin
from monitoring.clinic_admin import services as clinic_admin_services
from monitoring.clinic_admin.forms import (
    DateForm,
    EpisodeOpenForm,
    PatientEditForm,
    PatientForm,
    TransferForm,
)
from monitoring.clinic_admin.selectors import patients_for_admin, patients_past_retention
from monitoring.security.audit import access_log, access_log_list
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required, staff_required


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
