"""The admin's patient pages: the list with new patients, one patient's record (edit, transfer,
episodes, discharge) and erasure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    QueryDict,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Clinic, Patient
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


@dataclass
class PatientForms:
    """The forms of the admin's patient page; the posted one is bound, the others blank."""

    edit: PatientEditForm
    transfer: TransferForm
    open_form: EpisodeOpenForm
    close_form: DateForm

    @classmethod
    def build(cls, request: HttpRequest, clinic: Clinic, record: Patient) -> PatientForms:
        posted = request.POST.get("form") if request.method == "POST" else None

        def data(*names: str) -> QueryDict | None:
            return request.POST if posted in names else None

        today = date.today()
        return cls(
            edit=PatientEditForm(data("edit"), instance=record),
            transfer=TransferForm(
                data("transfer"), clinic=clinic, current=record.therapist, initial={"on": today}
            ),
            open_form=EpisodeOpenForm(data("open"), initial={"started_on": today}),
            close_form=DateForm(data("close", "discharge"), initial={"on": today}),
        )


def _edit(forms: PatientForms, clinic: Clinic, record: Patient) -> str | None:
    if not forms.edit.is_valid():
        return None
    clinic_services.patient_update(
        patient=record, **{k: forms.edit.cleaned_data[k] for k in forms.edit.Meta.fields}
    )
    return "Saved."


def _transfer(forms: PatientForms, clinic: Clinic, record: Patient) -> str | None:
    if not forms.transfer.is_valid():
        return None
    therapist = clinic.memberships.get(user_id=forms.transfer.cleaned_data["therapist"]).user
    clinic_services.patient_transfer(
        patient=record, therapist=therapist, on=forms.transfer.cleaned_data["on"]
    )
    return f"{record.label} now sees {therapist.get_full_name()}; the earlier episode is kept."


def _open(forms: PatientForms, clinic: Clinic, record: Patient) -> str | None:
    if not forms.open_form.is_valid():
        return None
    clinic_services.episode_open(patient=record, **forms.open_form.cleaned_data)
    return "A new episode of care is open."


def _close(forms: PatientForms, clinic: Clinic, record: Patient) -> str | None:
    if not forms.close_form.is_valid():
        return None
    current = record.episodes.filter(ended_on=None).first()
    if current is None:
        raise ApplicationError("There is no open episode to close.")
    clinic_services.episode_close(episode=current, on=forms.close_form.cleaned_data["on"])
    return "The episode of care is closed."


def _discharge(forms: PatientForms, clinic: Clinic, record: Patient) -> str | None:
    if not forms.close_form.is_valid():
        return None
    clinic_services.patient_discharge(patient=record, on=forms.close_form.cleaned_data["on"])
    return f"{record.label} is discharged. All their data stays."


#: The page's forms by their ``form`` field: each returns the success message, or None when its
#: form is not valid (the page is shown again with the errors).
PATIENT_ACTIONS: dict[str, Callable[[PatientForms, Clinic, Patient], str | None]] = {
    "edit": _edit,
    "transfer": _transfer,
    "open": _open,
    "close": _close,
    "discharge": _discharge,
}


@staff_required
@require_http_methods(["GET", "POST"])
def patient(request: AuthenticatedRequest, slug: str, code: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    record = get_object_or_404(Patient.objects.select_related("therapist"), clinic=clinic, code=code)
    access_log(actor=request.user, instance=record, what="admin patient page", path=request.path)
    forms = PatientForms.build(request, clinic, record)
    if request.method == "POST":
        action = PATIENT_ACTIONS.get(request.POST.get("form", ""))
        try:
            done = action(forms, clinic, record) if action else None
            if done is None:
                raise ApplicationError("Please correct the form below.")
            messages.success(request, done)
            return redirect("monitoring:admin-patient", slug=clinic.slug, code=record.code)
        except ApplicationError as error:
            messages.error(request, error.message)
    return render(
        request,
        "clinic_admin/patient.html",
        {
            "clinic": clinic,
            "patient": record,
            "edit": forms.edit,
            "transfer": forms.transfer,
            "open_form": forms.open_form,
            "close_form": forms.close_form,
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
