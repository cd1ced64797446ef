"""Writes for clinics, staff, patients, episodes and sessions."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from allauth.usersessions.adapter import get_adapter as usersessions_adapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.appointments import channel_check
from clinics.errors import ApplicationError
from clinics.models import (
    Clinic,
    Episode,
    Membership,
    Patient,
    Session,
    StaffInvitation,
    SupervisorAssignment,
)
from clinics.permissions import works_in
from clinics.tokens import token_hash
from clinics.validation import check_date, check_fields, check_text


def staff_create(
    *, clinic: Clinic, email: str, role: str, password: str | None = None, name: str = ""
) -> User:
    """Create (or reuse) the user with ``email`` and give them ``role`` in ``clinic``."""
    User = get_user_model()
    email = email.strip().lower()
    first, _, last = name.partition(" ")
    user, created = User.objects.get_or_create(
        username=email, defaults={"email": email, "first_name": first, "last_name": last}
    )
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    membership, _ = Membership.objects.update_or_create(
        user=user, clinic=clinic, defaults={"role": role, "is_active": True}
    )
    _supervision_prune(membership)
    return user


#: The patient's fields that people type: checked (length, control characters) before a write.
PATIENT_TEXT = ("label", "external_id", "language", "contact_email", "contact_phone")


def patient_create(
    *,
    clinic: Clinic,
    label: str,
    therapist: User,
    external_id: str = "",
    language: str = "en",
    contact_email: str = "",
    contact_phone: str = "",
) -> Patient:
    if not works_in(user=therapist, clinic_id=clinic.pk):
        raise ApplicationError("The therapist is not a member of this clinic.")
    patient = Patient(
        clinic=clinic,
        label=label.strip(),
        external_id=external_id.strip(),
        therapist=therapist,
        language=language,
        contact_email=contact_email.strip(),
        contact_phone=contact_phone.strip(),
    )
    check_fields(patient, *PATIENT_TEXT)
    try:
        with transaction.atomic():
            patient.save(force_insert=True)
            return patient
    except IntegrityError as exc:
        raise ApplicationError(
            f"A patient labelled '{label}' or with that external id already exists."
        ) from exc


def episode_open(*, patient: Patient, started_on: date, treatment: str = Episode.Treatment.OTHER) -> Episode:
    """Open an episode of care; a discharged patient becomes active again (readmission)."""
    if patient.therapist is None:
        raise ApplicationError("Assign a therapist before opening an episode of care.")
    episode = Episode(
        patient=patient, therapist=patient.therapist, started_on=started_on, treatment=treatment
    )
    check_fields(episode, "started_on", "treatment")
    try:
        with transaction.atomic():
            if not patient.is_active:
                patient.is_active = True
                patient.save(update_fields=["is_active"])
            episode.save(force_insert=True)
            return episode
    except IntegrityError as exc:
        raise ApplicationError("This patient already has an open episode of care; close it first.") from exc


def session_create(*, episode: Episode, date: date, status: str = Session.Status.SCHEDULED) -> Session:
    """Add the next session of an episode (numbered after the last one).

    Numbers follow dates: a date before the episode's latest session is refused, because
    renumbering would change the session numbers that stored flags, exports and the health
    record already cite. Two sessions on one day are allowed.
    """
    with transaction.atomic():
        rows = list(episode.sessions.select_for_update().order_by("-number").values_list("number", "date"))
        number = (rows[0][0] if rows else 0) + 1
        later = max(rows, key=lambda row: row[1], default=None)
        if later is not None and date < later[1]:
            when = f"{later[1]:%-d %b %Y}"
            raise ApplicationError(
                f"Session {later[0]} is already on {when}, so a new session {number} cannot be dated "
                f"{date:%-d %b %Y}: session numbers follow dates. Choose a date on or after {when}, "
                f"or correct the date of session {later[0]} if it was entered wrongly.",
                code="date_order",
            )
        session = Session(episode=episode, number=number, date=date, status=status)
        check_fields(session, "number", "date", "status")
        session.save(force_insert=True)
        return session


# --- Staff administration ----------------------------------------------------------------------

STAFF_INVITATION_DAYS = 7


def staff_invite(
    *,
    clinic: Clinic,
    email: str,
    role: str,
    name: str = "",
    invited_by: User | None,
    join_url: Callable[[str], str],
) -> tuple[StaffInvitation, str]:
    """Invite someone to the clinic by email; returns the invitation and its one-time link.

    ``join_url`` turns the token into an absolute URL (the view knows the site's address).
    ``invited_by`` is None only for a new clinic's first admin (``manage.py clinic_create``).
    """
    email = email.strip().lower()
    check_text(email, what="Email", max_length=254)
    check_text(name, what="Name", max_length=150)
    if role not in Membership.Role.values:
        raise ApplicationError(ROLE_MISSING)
    if Membership.objects.active().filter(clinic=clinic, user__email__iexact=email).exists():
        raise ApplicationError(f"{email} already works in {clinic.name}.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        clinic.staff_invitations.pending().filter(email=email).update(revoked_at=now)
        invitation = StaffInvitation.objects.create(
            clinic=clinic,
            email=email,
            name=name.strip(),
            role=role,
            token_hash=token_hash(token),
            created_by=invited_by,
            expires_at=now + timedelta(days=STAFF_INVITATION_DAYS),
        )
    url = join_url(token)
    send_mail(
        f"You are invited to {clinic.name} on Bordin",
        f"{(invited_by.get_full_name() or invited_by.email) if invited_by else 'Bordin'} invites you to join "
        f"{clinic.name} on Bordin as "
        f"{invitation.get_role_display().lower()}.\n\nChoose your password here (the link works once, for "
        f"{STAFF_INVITATION_DAYS} days):\n{url}\n",
        settings.DEFAULT_FROM_EMAIL,
        [email],
    )
    return invitation, url


def staff_invitation_for_token(*, token: str) -> StaffInvitation:
    invitation = StaffInvitation.objects.select_related("clinic").filter(token_hash=token_hash(token)).first()
    if invitation is None:
        raise ApplicationError(
            "This invitation link is not known. Ask your clinic admin for a new one.", code="unknown"
        )
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation has been used already. Sign in instead.", code="used")
    if invitation.revoked_at is not None:
        raise ApplicationError(
            "This invitation was withdrawn. Ask your clinic admin for a new one.", code="revoked"
        )
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            "This invitation has expired. Ask your clinic admin for a new one.", code="expired"
        )
    return invitation


def staff_invitation_password_choose(*, token: str, password: str, name: str = "") -> None:
    """A newcomer chooses a password on the invitation page: the account is created if no
    account has the invitation's address. If one has, nothing is stored and no password is
    checked: the page is not a way to guess an account's password, nor to learn whether an
    address has an account (the answer, the checks and the time taken are the same). Either
    way the invitation stays pending; the person then signs in through the normal sign-in
    (lockout, rate limits, two-factor, audit) and accepts it (``staff_invitation_accept``)."""
    check_text(name, what="Name", max_length=150)  # first_name and last_name hold 150 each
    invitation = staff_invitation_for_token(token=token)
    User = get_user_model()
    first, _, last = (name or invitation.name).strip().partition(" ")
    candidate = User(username=invitation.email, email=invitation.email, first_name=first, last_name=last)
    try:
        validate_password(password, candidate)
    except DjangoValidationError as exc:
        raise ApplicationError("Please choose another password.", problems=list(exc.messages)) from exc
    candidate.set_password(password)  # hashed in both cases, so both take as long
    if User.objects.filter(email__iexact=invitation.email).exists():
        return
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError:
        return  # created meanwhile (the same form sent twice): the same answer


def staff_invitation_accept(*, token: str, user: User) -> Membership:
    """``user``, signed in, accepts an invitation sent to their address: the invitation is used
    up and the membership created (or reactivated) with the invitation's role."""
    invitation = staff_invitation_for_token(token=token)
    if user.email.strip().lower() != invitation.email.strip().lower():
        raise ApplicationError(
            "This invitation is for another address. Sign in with the address it was sent to.",
            code="other_address",
        )
    with transaction.atomic():
        claimed = (
            StaffInvitation.objects.pending().filter(pk=invitation.pk).update(accepted_at=timezone.now())
        )
        if not claimed:
            raise ApplicationError("This invitation has been used already.", code="used")
        membership, _ = Membership.objects.update_or_create(
            user=user, clinic=invitation.clinic, defaults={"role": invitation.role, "is_active": True}
        )
        _supervision_prune(membership)
    return membership


#: The roles an admin chooses from, in words.
ROLE_MISSING = "Choose a role: therapist, supervisor or clinic admin."


def membership_set_role(*, membership: Membership, role: str, by: User) -> Membership:
    """Change someone's role. Leaving the supervisor role ends their assignments; a therapist who
    becomes something else is no longer assigned to a supervisor."""
    if role not in Membership.Role.values:
        raise ApplicationError(ROLE_MISSING)
    if membership.user_id == by.pk and role != Membership.Role.ADMIN:
        raise ApplicationError("You cannot remove your own admin role; ask another admin.")
    if membership.role == Membership.Role.ADMIN and role != Membership.Role.ADMIN:
        _keep_one_admin(membership)
    with transaction.atomic():
        membership.role = role
        membership.save(update_fields=["role"])
        _supervision_prune(membership)
    return membership


def supervision_set(*, supervisor: Membership, therapists: Iterable[Membership]) -> list[Membership]:
    """The therapists ``supervisor`` oversees, exactly these from now on (the staff page's
    choice): they see those therapists' caseloads and patients, read-only, and the team page.
    Only an active supervisor, and only active therapists of the same clinic. Each assignment
    made or ended is in the audit trail. Returns the therapists now assigned."""
    if supervisor.role != Membership.Role.SUPERVISOR or not supervisor.is_active:
        raise ApplicationError(
            "Only an active supervisor can have therapists assigned; make them supervisor first."
        )
    chosen = {t.pk: t for t in therapists}
    for therapist in chosen.values():
        if (
            therapist.clinic_id != supervisor.clinic_id
            or therapist.role != Membership.Role.THERAPIST
            or not therapist.is_active
        ):
            raise ApplicationError("Only active therapists of this clinic can be assigned to a supervisor.")
    with transaction.atomic():
        for ended in SupervisorAssignment.objects.filter(supervisor=supervisor).exclude(therapist__in=chosen):
            ended.delete()  # one by one: each is an audit entry
        for therapist in chosen.values():
            SupervisorAssignment.objects.get_or_create(supervisor=supervisor, therapist=therapist)
    return sorted(chosen.values(), key=lambda m: (m.user.last_name, m.user.first_name, m.pk))


def _supervision_prune(membership: Membership) -> None:
    """Assignments that no longer fit the membership (its role changed, or it ended) go."""
    if membership.role != Membership.Role.SUPERVISOR or not membership.is_active:
        for row in SupervisorAssignment.objects.filter(supervisor=membership):
            row.delete()
    if membership.role != Membership.Role.THERAPIST or not membership.is_active:
        for row in SupervisorAssignment.objects.filter(therapist=membership):
            row.delete()


def _keep_one_admin(membership: Membership) -> None:
    others = Membership.objects.admins().filter(clinic=membership.clinic_id)
    if not others.exclude(pk=membership.pk).exists():
        raise ApplicationError("A clinic needs at least one active admin; make someone else admin first.")


def membership_deactivate(*, membership: Membership, by: User) -> int:
    """End someone's work in the clinic. Their patients must have been reassigned first. The
    clinic is out of their reach at once (only active memberships count); if it was their last
    clinic, their signed-in sessions end too (sessions for their other clinics are not this
    clinic's to end). Returns the number of sessions ended."""
    if membership.user_id == by.pk:
        raise ApplicationError("You cannot deactivate yourself; ask another admin.")
    assigned = Patient.objects.filter(
        clinic=membership.clinic_id, therapist=membership.user_id, is_active=True
    )
    if assigned.exists():
        raise ApplicationError(
            f"{membership.user.get_full_name() or membership.user.email} still has {assigned.count()} active "
            "patient(s). Transfer them to another therapist first, then deactivate.",
            code="has_patients",
        )
    if membership.role == Membership.Role.ADMIN:
        _keep_one_admin(membership)
    with transaction.atomic():
        membership.is_active = False
        membership.save(update_fields=["is_active"])
        _supervision_prune(membership)
        user = membership.user
        if user.memberships.active().exists():
            return 0
        user.is_active = False
        user.save(update_fields=["is_active"])
    return user_sessions_end(user=membership.user)


@dataclass(frozen=True)
class SignOut:
    """What "Sign out everywhere" on a membership did: ``sessions`` signed-in sessions lost the
    clinic; ``everywhere``: they were ended (the membership was the person's only one)."""

    sessions: int
    everywhere: bool


def user_sessions_end_by_admin(*, membership: Membership, by: User) -> SignOut:
    """An admin signs a colleague out of the clinic on every device (a lost phone, a shared
    computer left signed in). Audited with who did it and what happened; the person can sign in
    again at once.

    The membership is stamped (``signed_out_at``): every session signed in before now no longer
    reaches this clinic (``monitoring.security.middleware.ClinicSignOutMiddleware``). If the
    person works in no other clinic, their sessions are ended as well. If they do, those sessions
    go on for the other clinics: one clinic's admin cannot end the person's work elsewhere."""
    from auditlog.models import LogEntry

    user, clinic = membership.user, membership.clinic
    Membership.objects.filter(pk=membership.pk).update(signed_out_at=timezone.now())
    if user.memberships.active().exclude(pk=membership.pk).exists():
        result = SignOut(sessions=len(_live_sessions(user)), everywhere=False)
        text = (
            f"Signed out of {clinic.name} by {by.email}: {result.sessions} signed-in session(s) no longer "
            f"reach {clinic.name}; they go on for the person's other clinics"
        )
    else:
        result = SignOut(sessions=user_sessions_end(user=user), everywhere=True)
        text = f"Signed out everywhere by {by.email}: {result.sessions} session(s) ended"
    LogEntry.objects.log_create(
        membership,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        actor=by,
        changes_text=text,
        additional_data={
            "clinic": membership.clinic_id,
            "event": "sessions ended",
            "sessions": result.sessions,
            "scope": "all" if result.everywhere else "clinic",
        },
    )
    return result


def _live_sessions(user: User, keep: str | None = None) -> list[UserSession]:
    """``user``'s signed-in sessions (allauth's index), except ``keep``; rows of sessions that
    have ended (signed out, expired) are dropped on the way."""
    alive: list[UserSession] = []
    gone: list[int] = []
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep or ""):
        if session.exists():
            alive.append(session)
        else:
            gone.append(session.pk)
    UserSession.objects.filter(pk__in=gone).delete()
    return alive


def user_sessions_end(*, user: User, keep: str | None = None) -> int:
    """End every signed-in session of ``user`` except the session ``keep`` (the one in which the
    user just changed their password). Returns the number of sessions ended.

    The sessions are found in allauth's index of each user's sessions (allauth.usersessions, one
    row per sign-in, see ``user_session_record``) and ended through the configured session
    engine, so this works with any engine (``db``, ``cached_db``, ``cache``) and reads only this
    user's rows. Rows of sessions that have already ended (signed out, expired) are dropped.
    """
    alive = _live_sessions(user, keep)
    usersessions_adapter().end_sessions(alive)  # deletes each from the session store, then its row
    return len(alive)


def user_session_record(*, user: User, session_key: str, ip: str, user_agent: str = "") -> None:
    """Add a signed-in session to allauth's index of ``user``'s sessions (what
    ``user_sessions_end`` reads). allauth indexes the sign-ins made through its own views; this
    covers every other ``login`` too (the staff invitation page), so that no session is missed."""
    max_length = UserSession._meta.get_field("user_agent").max_length or 0
    UserSession.objects.update_or_create(
        session_key=session_key, defaults={"user": user, "ip": ip, "user_agent": user_agent[:max_length]}
    )


# --- Patients and episodes ---------------------------------------------------------------------


def patient_update(
    *,
    patient: Patient,
    label: str,
    external_id: str,
    language: str,
    contact_email: str,
    contact_phone: str,
    form_channel: str | None = None,
) -> Patient:
    patient.label = label.strip()
    patient.external_id = external_id.strip()
    patient.language = language
    patient.contact_email = contact_email.strip()
    patient.contact_phone = contact_phone.strip()
    if form_channel is not None:
        patient.form_channel = form_channel
    check_fields(patient, *PATIENT_TEXT)
    channel_check(patient)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:
        raise ApplicationError("Another patient of this clinic has that label or external id.") from exc
    return patient


def patient_transfer(*, patient: Patient, therapist: User, on: date) -> Episode | None:
    """Give the patient a new therapist. The open episode ends and a new one starts with the new
    therapist (the alliance is with a therapist, so its level starts afresh); the earlier
    episode, its answers and flags stay as they were."""
    if not Membership.objects.therapists().filter(clinic=patient.clinic_id, user=therapist).exists():
        raise ApplicationError("Choose an active therapist of this clinic.")
    if patient.therapist_id == therapist.pk:
        raise ApplicationError("The patient already sees this therapist.")
    check_date(on, what="The transfer date")
    with transaction.atomic():
        current = patient.episodes.select_for_update().filter(ended_on=None).first()
        new_episode = None
        if current is not None:
            if on < current.started_on:
                raise ApplicationError("The transfer date cannot be before the episode started.")
            current.ended_on = on
            current.save(update_fields=["ended_on"])
            new_episode = Episode.objects.create(
                patient=patient, therapist=therapist, treatment=current.treatment, started_on=on
            )
        patient.therapist = therapist
        patient.save(update_fields=["therapist"])
    return new_episode


def episode_close(*, episode: Episode, on: date) -> Episode:
    if episode.ended_on is not None:
        raise ApplicationError("This episode of care is closed already.")
    if on < episode.started_on:
        raise ApplicationError("An episode cannot end before it started.")
    check_date(on, what="The end of the episode")
    episode.ended_on = on
    episode.save(update_fields=["ended_on"])
    return episode


def patient_discharge(*, patient: Patient, on: date) -> Patient:
    """Close the open episode and mark the patient inactive; all their data stays."""
    with transaction.atomic():
        current = patient.episodes.filter(ended_on=None).first()
        if current is not None:
            episode_close(episode=current, on=max(on, current.started_on))
        patient.is_active = False
        patient.save(update_fields=["is_active"])
    return patient


def clinic_settings_update(*, clinic: Clinic, **values: object) -> Clinic:
    allowed = set(Clinic.SETTINGS)
    unknown = set(values) - allowed
    if unknown:
        raise ApplicationError("Unknown setting(s): " + ", ".join(sorted(unknown)))
    for key, value in values.items():
        setattr(clinic, key, value)
    clinic.full_clean()
    clinic.save()
    return clinic
