"""Staff pages: the staff list, invitations, role changes, deactivation and signing a colleague
out everywhere; and the invitation link a new colleague follows to join (open to anyone with
the link)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Membership, StaffInvitation
from clinics.permissions import clinic_for_admin
from monitoring.clinic_admin.forms import (
    StaffInviteForm,
)
from monitoring.clinic_admin.selectors import staff_with_supervision
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required, staff_required


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
    memberships = staff_with_supervision(clinic=clinic)
    pending = clinic.staff_invitations.pending()
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
            "therapists": [m for m in memberships if m.is_active and m.role == Membership.Role.THERAPIST],
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
                f"{membership.user.get_full_name()} no longer has access to {clinic.name}"
                + (f"; {ended} signed-in session(s) ended." if ended else "."),
            )
        elif action == "supervise":
            codes = [_uuid_or_none(c) for c in request.POST.getlist("therapist")]
            chosen = Membership.objects.filter(
                clinic=clinic, code__in=[c for c in codes if c]
            ).select_related("user")
            if len(chosen) != len(codes):
                raise ApplicationError(
                    "A therapist in that choice is no longer on the staff list; reload the page."
                )
            assigned = clinic_services.supervision_set(supervisor=membership, therapists=chosen)
            names = ", ".join(t.user.get_full_name() or t.user.email for t in assigned)
            messages.success(
                request,
                f"{membership.user.get_full_name() or membership.user.email} now supervises "
                + (
                    f"{names}: their caseloads and patients, read-only, and the Team page."
                    if names
                    else "nobody."
                ),
            )
        elif action == "sign-out":
            result = clinic_services.user_sessions_end_by_admin(membership=membership, by=request.user)
            if result.everywhere:
                messages.success(
                    request,
                    f"{membership.user.get_full_name()} was signed out everywhere: "
                    f"{result.sessions} session(s) ended.",
                )
            else:
                messages.success(
                    request,
                    f"{membership.user.get_full_name()} was signed out of {clinic.name} on every device: "
                    f"{result.sessions} signed-in session(s) no longer reach {clinic.name}. They also work "
                    "in another clinic, so those sessions go on there.",
                )
        else:
            raise ApplicationError("Unknown action.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("monitoring:admin-staff", slug=clinic.slug)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@staff_required
@recent_sign_in_required
@require_POST
def staff_invitation_revoke(request: AuthenticatedRequest, slug: str, code: str) -> HttpResponse:
    clinic = clinic_for_admin(user=request.user, slug=slug)
    invitation = get_object_or_404(StaffInvitation, clinic=clinic, code=code)
    StaffInvitation.objects.pending().filter(pk=invitation.pk).update(revoked_at=timezone.now())
    messages.success(request, f"The invitation for {invitation.email} has been withdrawn.")
    return redirect("monitoring:admin-staff", slug=clinic.slug)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """Accept a staff invitation (open to anyone with the link).

    Signed out: one page whether or not the address has an account. A newcomer chooses a
    password here; everyone then signs in through the normal sign-in (lockout, rate limits,
    two-factor, audit), which brings them back here. No password of an existing account is ever
    checked on this page. Signed in as the invited address: a button accepts (POST, CSRF).
    Signed in as someone else: the page says the invitation is for another address.
    """
    try:
        invitation = clinic_services.staff_invitation_for_token(token=token)
    except ApplicationError as error:
        return render(request, "clinic_admin/join_problem.html", {"message": error.message}, status=410)
    sign_in_url = f"{reverse('account_login')}?next={quote(request.path)}"
    user = request.user
    problems: list[str] = []
    if user.is_authenticated:
        if request.method == "POST":
            try:
                clinic_services.staff_invitation_accept(token=token, user=user)  # type: ignore[arg-type]
            except ApplicationError as error:
                problems = [error.message]
            else:
                messages.success(request, f"Welcome to {invitation.clinic.name}.")
                return redirect("monitoring:caseload")  # two-factor set-up first, if still to do
        mine = user.email.strip().lower() == invitation.email.strip().lower()
        return render(
            request,
            "clinic_admin/join.html",
            {"invitation": invitation, "problems": problems, "signed_in": True, "mine": mine},
            status=400 if problems else 200,
        )
    if request.method == "POST":
        password = request.POST.get("password", "")
        if password != request.POST.get("password_again", password):
            problems = ["The two passwords differ."]
        else:
            try:
                clinic_services.staff_invitation_password_choose(
                    token=token, password=password, name=request.POST.get("name", "")
                )
            except ApplicationError as error:
                problems = error.problems or [error.message]
            else:
                # The same answer whether an account was created or one existed already.
                messages.info(
                    request,
                    f"Sign in to accept the invitation to {invitation.clinic.name}. If you already "
                    "had a Bordin account, sign in with its password.",
                )
                return redirect(sign_in_url)
    return render(
        request,
        "clinic_admin/join.html",
        {"invitation": invitation, "problems": problems, "sign_in_url": sign_in_url},
        status=400 if problems else 200,
    )
