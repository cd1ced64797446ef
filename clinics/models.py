"""Clinics, their staff, patients, episodes of care and sessions.

This app knows nothing of questionnaires or analysis (``monitoring`` builds on it, never the
other way round). Every rule that protects the data is a database constraint, so a bug in a form
or a direct import cannot break it.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.validation import (
    MAX_IDLE_TIMEOUT_MINUTES,
    MAX_LINK_EXPIRY_HOURS,
    MAX_RETENTION_YEARS,
    MAX_SESSION_NUMBER,
    MIN_IDLE_TIMEOUT_MINUTES,
    no_control_characters,
    validate_plausible_date,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class ClinicScoped:
    """A model whose audit-trail entries name their clinic, so that a clinic's admins can read
    their own trail (django-auditlog stores ``get_additional_data()`` with every entry).

    ``clinic_path`` is the attribute path from the object to its clinic's id; ``patient_path``,
    where the object is about one patient, the path to that patient's code, so that the trail can
    be filtered by patient. The random code, not the label: an erased patient's identifiers must
    not survive in the trail (the page looks the label up while the patient exists).
    """

    clinic_path: ClassVar[str] = "clinic_id"
    patient_path: ClassVar[str] = ""

    def get_additional_data(self) -> dict[str, Any]:
        value: Any = self
        try:
            for part in self.clinic_path.split("."):
                value = getattr(value, part)
        except ObjectDoesNotExist:  # the chain was deleted first
            return {}
        data: dict[str, Any] = {"clinic": value}
        if self.patient_path:
            code: Any = self
            try:
                for part in self.patient_path.split("."):
                    code = getattr(code, part)
            except ObjectDoesNotExist:
                return data
            data["patient"] = str(code)
        return data


class ClinicQuerySet(models.QuerySet["Clinic"]):
    def administered_by(self, user: User | AnonymousUser) -> ClinicQuerySet:
        """The clinics where ``user`` is an active admin (none for a signed-out visitor)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(
            pk__in=Membership.objects.reaching(user).filter(role=Membership.Role.ADMIN).values("clinic_id")
        )

    def overseen_by(self, user: User | AnonymousUser) -> ClinicQuerySet:
        """The clinics where ``user`` is an active admin or supervisor: whose team page they see."""
        if not user.is_authenticated:
            return self.none()
        roles = [Membership.Role.ADMIN, Membership.Role.SUPERVISOR]
        return self.filter(
            pk__in=Membership.objects.reaching(user).filter(role__in=roles).values("clinic_id")
        )

    def worked_in_by(self, user: User | AnonymousUser) -> ClinicQuerySet:
        """The clinics where ``user`` has an active membership, in any role."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(pk__in=Membership.objects.reaching(user).values("clinic_id"))


class Clinic(ClinicScoped, models.Model):
    clinic_path = "pk"

    class Sensitivity(models.TextChoices):
        """A false-alarm budget: how many sessions per 100 of a patient whose alliance is steady
        may raise attention (``BUDGETS``). The thresholds are calibrated to it for this clinic
        (monitoring.analytics.calibration), so the words are the same whatever the clinic's noise."""

        STRICT = "strict", _("Strict: at most 1 alarm per 200 sessions of a steady patient")
        STANDARD = (
            "standard",
            _("Standard: at most 1 alarm per 100 sessions of a steady patient (recommended)"),
        )
        SENSITIVE = "sensitive", _("Sensitive: at most 2 alarms per 100 sessions of a steady patient")

    class OutcomeTiming(models.TextChoices):
        WITH_ALLIANCE = "with_alliance", _("After the session, on the same link as the alliance questions")
        BEFORE_SESSION = "before_session", _("Before the session, on a link of their own")

    #: What a patient who answers above 0 on a risk item (PHQ-9 item 9) sees, unless the clinic
    #: wrote its own text.
    DEFAULT_CRISIS_TEXT = _(
        "You said you have had thoughts that you would be better off dead or of hurting yourself. "
        "If you are in danger now, or think you might act on these thoughts, call your local "
        "emergency number (112 in Europe, 999 in the UK, 911 in the US) or go to the nearest "
        "emergency department. You can also call a crisis line at any time, day or night: "
        "Samaritans 116 123 (UK and Ireland), 988 (US), TelefonSeelsorge 0800 111 0 111 (Germany)."
    )

    #: Attention sessions per 100 sessions of a steady patient, by sensitivity (the analytics'
    #: presets of the same names carry the same budgets).
    BUDGETS: ClassVar[dict[str, float]] = {"strict": 0.5, "standard": 1.0, "sensitive": 2.0}

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200, validators=[no_control_characters])
    created_at = models.DateTimeField(auto_now_add=True)

    # The ranges of the numeric settings (clinics.validation says why).
    MAX_LINK_EXPIRY_HOURS = MAX_LINK_EXPIRY_HOURS
    MAX_RETENTION_YEARS = MAX_RETENTION_YEARS
    MIN_IDLE_TIMEOUT_MINUTES = MIN_IDLE_TIMEOUT_MINUTES
    MAX_IDLE_TIMEOUT_MINUTES = MAX_IDLE_TIMEOUT_MINUTES

    #: The settings an admin may change (the settings page and clinic_settings_update both use it).
    SETTINGS = (
        "name",
        "instrument_code",
        "default_language",
        "link_expiry_hours",
        "reminder_delay_hours",
        "patients_see_results",
        "therapist_rating_enabled",
        "sensitivity",
        "low_alliance_cutoff",
        "low_alliance_sessions",
        "outcome_measures",
        "outcome_timing",
        "crisis_text",
        "retention_years",
        "idle_timeout_minutes",
    )

    # Settings. Each one is explained to the admin on the settings page.
    default_language = models.CharField(max_length=8, default="en")
    instrument_code = models.SlugField(max_length=50, default="bordin-alliance")
    link_expiry_hours = models.PositiveIntegerField(
        default=72, validators=[MinValueValidator(1), MaxValueValidator(MAX_LINK_EXPIRY_HOURS)]
    )
    reminder_delay_hours = models.PositiveIntegerField(
        default=24, validators=[MaxValueValidator(MAX_LINK_EXPIRY_HOURS)]
    )
    patients_see_results = models.BooleanField(default=False)
    therapist_rating_enabled = models.BooleanField(default=False)
    sensitivity = models.CharField(max_length=16, choices=Sensitivity.choices, default=Sensitivity.STANDARD)
    # The absolute signal (docs/methods.md 4.9): a total below the cut-off this many sessions in a
    # row. Bounds: below 1.5 almost nobody is flagged; above 4 (of 5) many steady patients are.
    low_alliance_cutoff = models.FloatField(
        default=2.5, validators=[MinValueValidator(1.5), MaxValueValidator(4.0)]
    )
    low_alliance_sessions = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(2), MaxValueValidator(10)]
    )
    outcome_measures = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Codes of the symptom measures asked with each session, e.g. ['phq9', 'gad7']."),
    )
    outcome_timing = models.CharField(
        max_length=16, choices=OutcomeTiming.choices, default=OutcomeTiming.WITH_ALLIANCE
    )
    crisis_text = models.TextField(
        blank=True,
        max_length=2000,
        help_text=_(
            "What a patient who reports thoughts of self-harm sees at once. Empty: the default text."
        ),
    )
    retention_years = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_YEARS)]
    )
    idle_timeout_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(MIN_IDLE_TIMEOUT_MINUTES), MaxValueValidator(MAX_IDLE_TIMEOUT_MINUTES)],
    )

    objects = ClinicQuerySet.as_manager()

    class Meta:
        constraints = [
            # A link's expiry is computed from these: out of range, every link of the clinic fails.
            models.CheckConstraint(
                condition=Q(link_expiry_hours__range=(1, MAX_LINK_EXPIRY_HOURS)),
                name="clinic_link_expiry_in_range",
            ),
            models.CheckConstraint(
                condition=Q(reminder_delay_hours__lte=MAX_LINK_EXPIRY_HOURS),
                name="clinic_reminder_delay_in_range",
            ),
            models.CheckConstraint(
                condition=Q(retention_years__range=(1, MAX_RETENTION_YEARS)), name="clinic_retention_in_range"
            ),
            models.CheckConstraint(
                condition=Q(idle_timeout_minutes__range=(MIN_IDLE_TIMEOUT_MINUTES, MAX_IDLE_TIMEOUT_MINUTES)),
                name="clinic_idle_timeout_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def crisis_message(self) -> str:
        return self.crisis_text.strip() or str(self.DEFAULT_CRISIS_TEXT)

    @property
    def false_alarm_budget(self) -> float:
        return self.BUDGETS.get(self.sensitivity, 1.0)


class MembershipQuerySet(models.QuerySet["Membership"]):
    """Who works where. "Active" is the only state that grants anything: a deactivated
    membership keeps its history and opens nothing."""

    def active(self) -> MembershipQuerySet:
        return self.filter(is_active=True)

    def admins(self) -> MembershipQuerySet:
        return self.active().filter(role=Membership.Role.ADMIN)

    def therapists(self) -> MembershipQuerySet:
        return self.active().filter(role=Membership.Role.THERAPIST)

    def supervisors(self) -> MembershipQuerySet:
        return self.active().filter(role=Membership.Role.SUPERVISOR)

    def overseen_by(self, user: User | AnonymousUser) -> MembershipQuerySet:
        """The active therapists whose work ``user`` oversees: every therapist of a clinic they
        administer, and the therapists assigned to them as supervisor (``SupervisorAssignment``).
        The team page's rows and the caseload's therapist filter."""
        if not user.is_authenticated:
            return self.none()
        mine = Membership.objects.reaching(user)
        administered = mine.filter(role=Membership.Role.ADMIN).values("clinic_id")
        supervised = SupervisorAssignment.objects.filter(
            supervisor__in=mine.filter(role=Membership.Role.SUPERVISOR),
            supervisor__clinic_id=OuterRef("clinic_id"),
        ).filter(therapist_id=OuterRef("pk"))
        return self.therapists().filter(Q(clinic_id__in=administered) | Q(Exists(supervised)))

    def reaching(self, user: User | AnonymousUser) -> MembershipQuerySet:
        """The memberships through which ``user`` reaches clinics in this request: the active
        ones, minus the clinics whose admin signed this session out ("Sign out everywhere" on
        that membership, ``Membership.signed_out_at``). Those clinics are in ``user``'s
        ``SIGNED_OUT_OF`` attribute, which monitoring.security.middleware sets on every request
        of a signed-in session. Every access rule of the project starts here."""
        if not user.is_authenticated:
            return self.none()
        mine = self.active().filter(user_id=user.pk)
        closed = getattr(user, SIGNED_OUT_OF, None)
        return mine.exclude(clinic_id__in=closed) if closed else mine


#: The attribute of a request's user naming the clinics (ids) that this session may no longer
#: reach, because their admin signed the person out of them after this session signed in.
SIGNED_OUT_OF = "bordin_signed_out_of"


class Membership(ClinicScoped, models.Model):
    """A user's place in a clinic. A user may work in several clinics, with one role in each."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Clinic admin")
        THERAPIST = "therapist", _("Therapist")
        #: Sees the caseloads and patients of the therapists assigned to them, read-only.
        SUPERVISOR = "supervisor", _("Supervisor")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    #: "Sign out everywhere" on this membership: sessions signed in before this time no longer
    #: reach this clinic (their other clinics stay); a new sign-in does.
    signed_out_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_one_per_clinic"),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "therapist", "supervisor"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) at {self.clinic}"


class SupervisorAssignment(ClinicScoped, models.Model):
    """A therapist whose caseload a supervisor sees (read-only), within one clinic.

    Both ends are memberships of the same clinic: the database refuses anything else (a trigger,
    migration clinics 0008, as a check cannot look into another row), and the access rule
    (``PatientQuerySet.visible_to``) matches the clinic of both again, so a row can never open
    another clinic. An assignment grants something only while the supervisor's membership is an
    active supervisor one and the therapist's is active. (On SQLite, a migration that rebuilds
    this table drops its triggers: such a migration creates them again.)"""

    clinic_path = "supervisor.clinic_id"

    supervisor = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="supervising")
    therapist = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="supervised_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["supervisor", "therapist"], name="supervision_once_per_pair"),
            models.CheckConstraint(
                condition=~Q(supervisor=models.F("therapist")), name="supervision_not_of_oneself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.supervisor} supervises {self.therapist}"


class PatientQuerySet(models.QuerySet["Patient"]):
    def visible_to(self, user: User | AnonymousUser) -> PatientQuerySet:
        """Every patient ``user`` may see: a therapist their own patients, an admin every patient
        of their clinic, a supervisor the patients of the therapists assigned to them (read-only:
        ``changeable_by``). The one access rule for patient data (``clinics.permissions``)."""
        if not user.is_authenticated:
            return self.none()
        mine = Membership.objects.reaching(user)
        supervised = SupervisorAssignment.objects.filter(
            supervisor__in=mine.filter(role=Membership.Role.SUPERVISOR),
            supervisor__clinic_id=OuterRef("clinic_id"),
            therapist__clinic_id=OuterRef("clinic_id"),
            therapist__user_id=OuterRef("therapist_id"),
            therapist__is_active=True,
        )
        return self.filter(self._changeable(user, mine) | Q(Exists(supervised)))

    def changeable_by(self, user: User | AnonymousUser) -> PatientQuerySet:
        """The patients ``user`` may act on (write, send forms, export): their own as therapist,
        their clinic's as admin. A supervisor sees patients (``visible_to``) but changes none."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(self._changeable(user, Membership.objects.reaching(user)))

    @staticmethod
    def _changeable(user: User | AnonymousUser, mine: MembershipQuerySet) -> Q:
        admin_of = mine.filter(role=Membership.Role.ADMIN).values("clinic_id")
        therapist_in = mine.filter(role=Membership.Role.THERAPIST).values("clinic_id")
        return Q(clinic__in=admin_of) | Q(clinic__in=therapist_in, therapist_id=user.pk)

    def search(self, query: str) -> PatientQuerySet:
        """Patients whose label or record number contains ``query`` (any case); all for ""."""
        return self.filter(patient_search(query))


#: The longest stored value a search compares with (external_id).
SEARCH_MAX_LENGTH = 100


def patient_search(query: str) -> Q:
    """The one patient search: label or record number contains ``query`` (any case); matches
    everyone for "". A ``Q`` so that any queryset of patients can use it. A query longer than
    any stored value, or with a NUL byte (PostgreSQL refuses it as a parameter), matches no one."""
    query = query.strip()
    if not query:
        return Q()
    if len(query) > SEARCH_MAX_LENGTH or "\x00" in query:
        return Q(pk__in=[])
    return Q(label__icontains=query) | Q(external_id__icontains=query)


class FormChannel(models.TextChoices):
    """How a patient gets form links (``Patient.form_channel``); blank is automatic."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("Text message")
    NONE = "none", _("None: in the clinic (tablet or QR code)")


class Patient(ClinicScoped, models.Model):
    """A patient of one clinic. URLs carry the opaque ``code``, never the primary key or a name."""

    patient_path = "code"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    label = models.CharField(
        max_length=60,
        validators=[no_control_characters],
        help_text=_("How staff recognise the patient, e.g. initials. No full names."),
    )
    external_id = models.CharField(
        max_length=100,
        blank=True,
        validators=[no_control_characters],
        help_text=_("Identifier in the health record."),
    )
    language = models.CharField(max_length=8, default="en")
    contact_email = models.EmailField(blank=True, help_text=_("Where form links and reminders go. Optional."))
    contact_phone = models.CharField(
        max_length=32,
        blank=True,
        validators=[no_control_characters],
        help_text=_("For text-message links. Optional."),
    )
    is_active = models.BooleanField(default=True)
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="patients", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    form_channel = models.CharField(
        max_length=8,
        blank=True,
        choices=FormChannel.choices,
        help_text=_("How form links reach the patient. Empty: email if on file, else text message."),
    )

    objects = PatientQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "label"], name="patient_label_unique_in_clinic"),
            models.UniqueConstraint(
                fields=["clinic", "external_id"],
                condition=~Q(external_id=""),
                name="patient_external_id_unique_in_clinic",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "therapist", "is_active"])]

    def __str__(self) -> str:
        # Not the label: this is what the audit trail keeps, and an erased patient's identifiers
        # must not survive there. The code is random and identifies no one once erased.
        return f"Patient {self.code}"


class Episode(ClinicScoped, models.Model):
    """An episode of care: one course of treatment with one therapist. Analysis runs per episode."""

    clinic_path = "patient.clinic_id"
    patient_path = "patient.code"

    class Treatment(models.TextChoices):
        CBT = "cbt", _("Cognitive behavioural therapy")
        PSYCHODYNAMIC = "psychodynamic", _("Psychodynamic therapy")
        EXPOSURE = "exposure", _("Exposure therapy")
        INTERPERSONAL = "interpersonal", _("Interpersonal therapy")
        SYSTEMIC = "systemic", _("Systemic / family therapy")
        OTHER = "other", _("Other")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="episodes")
    therapist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="episodes")
    treatment = models.CharField(max_length=32, choices=Treatment.choices, default=Treatment.OTHER)
    started_on = models.DateField(validators=[validate_plausible_date])
    ended_on = models.DateField(null=True, blank=True, validators=[validate_plausible_date])

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient"], condition=Q(ended_on__isnull=True), name="episode_one_open_per_patient"
            ),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=models.F("started_on")),
                name="episode_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} from {self.started_on}"

    @property
    def is_open(self) -> bool:
        return self.ended_on is None


class Session(ClinicScoped, models.Model):
    clinic_path = "episode.patient.clinic_id"
    patient_path = "episode.patient.code"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        HELD = "held", _("Held")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("Did not attend")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="sessions")
    number = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SESSION_NUMBER)]
    )
    date = models.DateField(validators=[validate_plausible_date])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # The health record's id of the appointment, so that a retried push finds the session it made
    # (docs/api.md, step 5). Unique within the clinic, which is copied beside it because a
    # constraint cannot reach through the episode to the patient's clinic.
    # NULL, not "": sessions without an appointment id must not collide in the unique constraint.
    external_id = models.CharField(  # noqa: DJ001
        max_length=100, null=True, blank=True, validators=[no_control_characters]
    )
    external_clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, editable=False, related_name="+"
    )

    class Meta:
        ordering = ["episode", "number"]
        constraints = [
            models.UniqueConstraint(fields=["episode", "number"], name="session_number_unique_in_episode"),
            models.UniqueConstraint(
                fields=["external_clinic", "external_id"], name="session_external_id_unique_in_clinic"
            ),
            models.CheckConstraint(
                condition=Q(external_id__isnull=True, external_clinic__isnull=True)
                | Q(external_id__isnull=False, external_clinic__isnull=False),
                name="session_external_id_has_clinic",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="session_number_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "held", "cancelled", "no_show"]),
                name="session_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Session {self.number} on {self.date}"


class StaffInvitationQuerySet(models.QuerySet["StaffInvitation"]):
    def pending(self) -> StaffInvitationQuerySet:
        """Neither accepted nor withdrawn (it may have expired)."""
        return self.filter(accepted_at=None, revoked_at=None)

    def usable(self) -> StaffInvitationQuerySet:
        """Pending and not expired: the link still works."""
        return self.pending().filter(expires_at__gt=timezone.now())


class StaffInvitation(ClinicScoped, models.Model):
    """An admin's invitation for a therapist or admin to join the clinic. Only the token's hash
    is stored; the link is shown once and emailed. It expires and works once."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="staff_invitations")
    email = models.EmailField()
    name = models.CharField(max_length=150, blank=True, validators=[no_control_characters])
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = StaffInvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.clinic}"


class AppointmentSchedule(ClinicScoped, models.Model):
    """A patient's recurring appointments: weekly or every two weeks from a first date (until an
    optional last one), or an explicit list of dates; at one time of day. ``manage.py
    send_due_forms`` (cron) makes each appointment's session in the open episode as it comes due
    and sends the form link after it by the patient's channel (``Patient.form_channel``).

    ``done_through`` is the watermark: appointments on or before it have been handled (session
    made and link sent, or reported), so a second run sends nothing twice.
    """

    clinic_path = "patient.clinic_id"
    patient_path = "patient.code"

    class Repeat(models.TextChoices):
        WEEKLY = "weekly", _("Every week")
        FORTNIGHTLY = "fortnightly", _("Every two weeks")
        DATES = "dates", _("On the dates listed")

    #: Days between appointments, by repeat.
    INTERVALS: ClassVar[dict[str, int]] = {"weekly": 7, "fortnightly": 14}
    #: The most dates a list may hold (a year of weekly sessions).
    MAX_DATES = 60

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="schedule")
    repeat = models.CharField(max_length=12, choices=Repeat.choices)
    starts_on = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    ends_on = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    dates = models.JSONField(default=list, blank=True, help_text=_("ISO dates, for 'dates'."))
    time = models.TimeField(help_text=_("When the appointments start (the clinic's time)."))
    done_through = models.DateField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(repeat__in=["weekly", "fortnightly", "dates"]), name="schedule_repeat_valid"
            ),
            models.CheckConstraint(
                condition=Q(repeat="dates") | Q(starts_on__isnull=False), name="schedule_repeat_has_start"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True)
                | Q(starts_on__isnull=True)
                | Q(ends_on__gte=models.F("starts_on")),
                name="schedule_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"Appointments of {self.patient}: {self.repeat}"

    def appointments(self, *, after: date | None = None, until: date) -> list[date]:
        """The appointment dates after ``after`` (exclusive; all when None) up to ``until``."""
        if self.repeat == self.Repeat.DATES:
            days = sorted({date.fromisoformat(d) for d in self.dates})
        else:
            assert self.starts_on is not None
            last = min(until, self.ends_on) if self.ends_on else until
            step = timedelta(days=self.INTERVALS[self.repeat])
            days, day = [], self.starts_on
            while day <= last:
                days.append(day)
                day += step
        return [d for d in days if d <= until and (after is None or d > after)]

    @property
    def next_appointments(self) -> list[date]:
        """The next three appointments still to come (from today, not yet handled)."""
        today = timezone.localdate()
        after = max(self.done_through or today - timedelta(days=1), today - timedelta(days=1))
        return self.appointments(after=after, until=today + timedelta(days=366))[:3]
