"""Questionnaires as data, and the answers patients and therapists give.

An instrument version's *structure* (items, subscales, keying, scale) is fixed once loaded:
answers point at its items, so changing it would silently change stored results. New wording
in another language is a translation of the same version; a new structure is a new version.
Raw item answers are stored; scale scores are always derived (``monitoring.analytics``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinics.models import ClinicScoped, Session


class Rater(models.TextChoices):
    PATIENT = "patient", _("Patient")
    THERAPIST = "therapist", _("Therapist")


class Instrument(models.Model):
    class Kind(models.TextChoices):
        ALLIANCE = "alliance", _("Alliance (goal, task, bond)")
        OUTCOME = "outcome", _("Outcome measure (symptoms)")

    code = models.SlugField(max_length=50)
    version = models.PositiveIntegerField()
    rater = models.CharField(max_length=16, choices=Rater.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ALLIANCE)
    scoring = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "An outcome measure's scoring as data: bands, cut-off, reliable change, risk items, LOINC."
        ),
    )
    scale_min = models.PositiveSmallIntegerField()
    scale_max = models.PositiveSmallIntegerField()
    subscales = models.JSONField(
        help_text=_("Subscale codes in display order, e.g. ['goal', 'task', 'bond'].")
    )
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="instrument_code_version_unique"),
            models.CheckConstraint(
                condition=Q(scale_min__lt=models.F("scale_max")), name="instrument_scale_ordered"
            ),
            models.CheckConstraint(
                condition=Q(rater__in=["patient", "therapist"]), name="instrument_rater_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["alliance", "outcome"]), name="instrument_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    @property
    def measure(self) -> str:
        """What a response to it is an answer to: "alliance" for both alliance forms, else the
        outcome measure's code ("phq9", "gad7")."""
        return "alliance" if self.kind == self.Kind.ALLIANCE else self.code

    def translation(self, language: str) -> InstrumentTranslation:
        """The wording in ``language``, falling back to English, then to any loaded language."""
        texts = {t.language: t for t in self.translations.all()}
        for lang in (language, language.split("-")[0], "en"):
            if lang in texts:
                return texts[lang]
        return next(iter(texts.values()))


class InstrumentItem(models.Model):
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="items")
    number = models.PositiveSmallIntegerField(help_text=_("Position on the form, from 1."))
    subscale = models.CharField(max_length=32)
    reverse_keyed = models.BooleanField(default=False)
    code = models.CharField(max_length=32, blank=True, help_text=_("The item's LOINC code, if it has one."))

    class Meta:
        ordering = ["instrument", "number"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "number"], name="instrument_item_number_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="instrument_item_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} item {self.number} ({self.subscale})"


class InstrumentTranslation(models.Model):
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=8)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    scale_labels = models.JSONField(help_text=_("One label per scale value, lowest first."))
    item_texts = models.JSONField(help_text=_("Item number (as a string) to wording."))
    subscale_names = models.JSONField(default=dict)
    source = models.CharField(
        max_length=500, blank=True, help_text=_("Where the wording comes from (licence).")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "language"], name="instrument_translation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} [{self.language}]"


class Response(ClinicScoped, models.Model):
    """One completed questionnaire for one session, by the patient or by the therapist: the
    alliance form, or an outcome measure (``measure`` says which)."""

    clinic_path = "session.episode.patient.clinic_id"
    patient_path = "session.episode.patient.code"

    class Source(models.TextChoices):
        LINK = "link", _("Patient link")
        TABLET = "tablet", _("Clinic tablet")
        STAFF = "staff", _("Entered by staff from paper")
        IMPORT = "import", _("Imported")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="responses")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="responses")
    rater = models.CharField(max_length=16, choices=Rater.choices)
    measure = models.SlugField(
        max_length=50, default="alliance", help_text=_('"alliance", or the outcome measure\'s code ("phq9").')
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    submitted_at = models.DateTimeField()
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # One patient rating and one therapist rating of each measure per session: a double
            # submission, whatever its path, is refused by the database itself.
            models.UniqueConstraint(
                fields=["session", "rater", "measure"], name="response_one_per_session_rater_measure"
            ),
            models.CheckConstraint(
                condition=Q(rater__in=["patient", "therapist"]), name="response_rater_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["link", "tablet", "staff", "import"]), name="response_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater} {self.measure} response to {self.session}"


class Answer(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(InstrumentItem, on_delete=models.PROTECT, related_name="+")
    value = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "item"], name="answer_one_per_item"),
            # The widest scale an instrument may have (alliance forms 1-5, outcome measures within
            # 0-10); the write path checks each answer against its own instrument's scale.
            models.CheckConstraint(
                condition=Q(value__gte=0) & Q(value__lte=10), name="answer_value_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.value}"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        """Neither used nor withdrawn (it may have expired)."""
        return self.filter(used_at=None, revoked_at=None)

    def usable(self, now: datetime | None = None) -> InvitationQuerySet:
        """Open and not expired: the link opens the form now."""
        return self.open().filter(expires_at__gt=now or timezone.now())


class Invitation(ClinicScoped, models.Model):
    """A one-time link to the patient form for one session.

    Only a hash of the token is stored. The token itself is an HMAC of a random 256-bit salt
    under a key derived from SECRET_KEY (``monitoring.collection.links``), so the clinic can show the same
    link again (QR code, reminder) without the database ever holding it; a database copy alone
    opens nothing. The link carries no personal data.
    """

    clinic_path = "session.episode.patient.clinic_id"
    patient_path = "session.episode.patient.code"

    class Channel(models.TextChoices):
        LINK = "link", _("Link (email, text message or QR code)")
        TABLET = "tablet", _("Clinic tablet")

    class Part(models.TextChoices):
        AFTER = "after", _("After the session: the alliance (and the symptom measures, if they go with it)")
        BEFORE = "before", _("Before the session: the symptom measures")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="invitations")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    part = models.CharField(max_length=8, choices=Part.choices, default=Part.AFTER)
    measures = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The outcome measures the form asks, as chosen when it was made."),
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.LINK)
    salt = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    reminder_due_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.CharField(max_length=16, blank=True, help_text=_("email or sms, once sent"))

    objects = InvitationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["reminder_due_at"],
                condition=Q(reminder_sent_at__isnull=True, used_at__isnull=True),
                name="invitation_reminder_due",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.session}"


class ClinicEstimate(models.Model):
    """Clinic-level quantities the rules need (pooled SDs, variance components), as estimated on
    one date. Rows are never changed: a re-estimate adds a row, and each stored flag points at the
    row it was computed with, so a re-estimate never rewrites what a therapist was shown."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="estimates")
    estimated_at = models.DateTimeField()
    parameters = models.JSONField()
    patients_used = models.PositiveIntegerField()

    class Meta:
        get_latest_by = "estimated_at"
        indexes = [models.Index(fields=["clinic", "-estimated_at"])]

    def __str__(self) -> str:
        return f"{self.clinic} estimate of {self.estimated_at:%Y-%m-%d}"


class Flag(ClinicScoped, models.Model):
    """One event from the analysis (methods.md section 4), stored once and never rewritten."""

    clinic_path = "episode.patient.clinic_id"
    patient_path = "episode.patient.code"

    class Kind(models.TextChoices):
        RUPTURE = "rupture", _("Rupture")
        REPAIR = "repair", _("Repair")
        UNREPAIRED = "unrepaired", _("Unrepaired rupture")
        DECLINE = "decline", _("Declining trend")
        SUDDEN_GAIN = "sudden_gain", _("Sudden gain")
        SUDDEN_LOSS = "sudden_loss", _("Sudden loss")
        LOW_ALLIANCE = "low_alliance", _("Alliance has stayed low")
        PERSPECTIVE_GAP = "perspective_gap", _("Therapist rated it well above the patient")

    class Acknowledgement(models.TextChoices):
        DISCUSSED = "discussed", _("Discussed with patient")
        NOT_RELEVANT = "not_relevant", _("Not relevant")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey("clinics.Episode", on_delete=models.CASCADE, related_name="flags")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="flags")
    scale = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    alarm = models.BooleanField(
        default=False,
        help_text=_("Puts the patient on the caseload (the unit of alarm is the patient-session)."),
    )
    magnitude = models.FloatField()
    threshold = models.FloatField(null=True)
    explanation = models.TextField()
    detail = models.JSONField(default=dict, help_text=_("The numbers behind the flag."))
    config = models.JSONField(default=dict, help_text=_("The rule parameters it was computed with."))
    estimate = models.ForeignKey(ClinicEstimate, on_delete=models.PROTECT, null=True, related_name="flags")
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledgement = models.CharField(max_length=16, choices=Acknowledgement.choices, blank=True)
    acknowledged_note = models.CharField(max_length=500, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-session__number", "kind"]
        constraints = [
            # Recomputing stores no duplicates: one flag of a kind per session and scale.
            models.UniqueConstraint(fields=["episode", "session", "scale", "kind"], name="flag_unique_event"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.scale}) at {self.session}"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "flag"], name="notification_once_per_flag")]

    def __str__(self) -> str:
        return f"Notification of {self.flag} for {self.user}"


class SafetyAlertQuerySet(models.QuerySet["SafetyAlert"]):
    def open(self) -> SafetyAlertQuerySet:
        """Not yet followed up: these stay at the top of the caseload."""
        return self.filter(followed_up_at=None)


class SafetyAlert(ClinicScoped, models.Model):
    """A risk answer (PHQ-9 item 9 above 0): raised in the same transaction that stores the
    answers, shown at once to the patient (the clinic's crisis text) and to the therapist (an
    e-mail at commit and the top row of the caseload), and open until a clinician records what
    was done. Never deleted with a flag acknowledgement; the follow-up is audited."""

    clinic_path = "episode.patient.clinic_id"
    patient_path = "episode.patient.code"

    class FollowUp(models.TextChoices):
        CONTACTED = "contacted", _("Contacted the patient")
        SEEN = "seen", _("Discussed in session / seen in person")
        ESCALATED = "escalated", _("Referred on or escalated (crisis team, GP, emergency services)")
        NO_RISK = "no_risk", _("Assessed: no current risk")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    episode = models.ForeignKey("clinics.Episode", on_delete=models.CASCADE, related_name="safety_alerts")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="safety_alerts")
    response = models.OneToOneField(Response, on_delete=models.CASCADE, related_name="safety_alert")
    item = models.PositiveSmallIntegerField(help_text=_("The risk item's number."))
    value = models.PositiveSmallIntegerField(help_text=_("The answer given (above 0)."))
    answer_label = models.CharField(max_length=100, help_text=_("The answer as the patient saw it."))
    raised_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True, help_text=_("When the therapist was e-mailed."))
    followed_up_at = models.DateTimeField(null=True, blank=True)
    followed_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    follow_up = models.CharField(max_length=16, choices=FollowUp.choices, blank=True)
    follow_up_note = models.TextField(blank=True, max_length=2000)

    objects = SafetyAlertQuerySet.as_manager()

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gte=1), name="safety_alert_value_positive"),
            models.CheckConstraint(
                condition=Q(followed_up_at=None) | ~Q(follow_up=""), name="safety_alert_follow_up_named"
            ),
        ]

    def __str__(self) -> str:
        return f"Safety alert at {self.session}"


class EpisodeAnalysis(models.Model):
    """How far an episode's flags have been stored (the prospective watermark), and the snapshot
    of its analysis written at the same time.

    Flags are only ever added for sessions after ``flagged_through``, so a later recomputation,
    even with re-estimated clinic values, never adds, changes or removes a flag at a session the
    therapist has already seen analysed.
    """

    episode = models.OneToOneField("clinics.Episode", on_delete=models.CASCADE, related_name="analysis_state")
    flagged_through = models.PositiveIntegerField(default=0)
    analysed_sessions = models.JSONField(
        default=list, help_text=_("Session numbers whose answers the last analysis included.")
    )
    analysed_pairs = models.JSONField(
        default=list, help_text=_("Sessions both rated that the two-perspectives rule has judged.")
    )
    updated_at = models.DateTimeField(auto_now=True)
    # The analysis snapshot (monitoring.flags.snapshots): what pages, API and exports read.
    version = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("Snapshot format, clinic estimate and sensitivity it was computed with."),
    )
    analysed_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, help_text=_("Where the episode stands, for its caseload row."))
    frames = models.JSONField(
        default=dict, help_text=_("The episode's rows of the analysis, column by column.")
    )

    def __str__(self) -> str:
        return f"{self.episode} flagged through session {self.flagged_through}"


class EpisodeRevision(models.Model):
    """A counter per episode that the database itself advances (triggers, migration 0014)
    whenever anything the therapist's pages show of the episode changes: its sessions, answers,
    flags (and their acknowledgements), safety alerts, analysis snapshot, patient messages, form
    links, and the patient's appointments. Pages cache what they render under it
    (``monitoring.care.rows``, the patient page). Django never writes it: a trigger creates the
    row with its episode, so no save of an object read earlier can move it back, and a write by
    any path (the ORM, ``update()``, raw SQL, an import) moves it on."""

    episode = models.OneToOneField(
        "clinics.Episode", on_delete=models.CASCADE, primary_key=True, related_name="revision_counter"
    )
    revision = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.episode_id} at revision {self.revision}"


class ExportJob(ClinicScoped, models.Model):
    """One requested export, run in the background (or inline with no worker configured).

    The job is what the admin page polls for progress and what the download link points at,
    by its opaque ``code``. The file lives under ``MEDIA_ROOT/exports/<code>/`` and is served
    only through an access check (``monitoring.exports.services.export_file``), never as a
    public media URL. ``filters`` is ``ExportFilters.to_json()``, so a job can be re-run.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    exporter = models.CharField(max_length=50)
    format = models.CharField(max_length=8)
    filters = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    file_path = models.CharField(max_length=300, blank=True, help_text=_("Relative to MEDIA_ROOT."))
    filename = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["clinic", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="export_job_progress_percent"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "failed"]),
                name="export_job_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(format__in=["csv", "xlsx", "pdf", "fhir"]), name="export_job_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exporter} ({self.format}) for {self.clinic}, {self.status}"


class ApiToken(ClinicScoped, models.Model):
    """A personal API token for an integration (health record, research tool), scoped to one clinic.

    The token is ``bdn_<prefix>_<secret>`` with a 256-bit secret; it is shown once when created
    and only its SHA-256 is stored, so a copy of the database opens nothing. ``prefix`` is not
    secret: it lets people tell their tokens apart in lists and logs. A token sees what its user
    sees in the pages, narrowed to ``clinic`` (``monitoring.api.auth``). Revoking keeps the row
    for the audit trail; ``last_used_at`` is written at most once a minute.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text=_("What the token is for, e.g. the system using it."))
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["clinic", "-created_at"]),
            models.Index(fields=["user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"API token {self.name} (bdn_{self.prefix}_…) of {self.user} at {self.clinic}"


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` sent with an API create (monitoring/api/idempotency.py): the first
    answer is kept, so that a retry with the same key and body gets it again instead of making a
    second object. Only SHA-256 hashes of the key and of the request are kept, with the answer;
    ``status`` is null while the first request runs. Rows older than a day are deleted
    (``manage.py purge_idempotency_keys``, daily from cron) and no longer answer."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    location = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key_hash"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"Idempotency key {self.key_hash[:8]} of {self.user}"


class DigestSettings(models.Model):
    """A staff member's e-mail digest: how often news of their caseload is mailed, and when it
    last was (``manage.py send_digests``). A person without a row gets the default."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Once a day, when something is new")
        WEEKLY = "weekly", _("Once a week, when something is new")
        OFF = "off", _("Never")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digest")
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAILY)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Digest of {self.user}: {self.frequency}"


class PatientMessage(ClinicScoped, models.Model):
    """What the patient wrote in the optional box at the end of their form ("Anything you would
    like your therapist to know?"), stored with the answers in the transaction that claims the
    link, so once per link (the one-to-one), never without the answers and never twice.

    Free text in the patient's own words: shown to the therapist beside its session on the
    patient and session pages, each read audited (``monitoring.care.messages``); in no export;
    erased with the patient (the cascade from the session). The audit trail keeps that it was
    written, never the text.
    """

    clinic_path = "session.episode.patient.clinic_id"
    patient_path = "session.episode.patient.code"

    #: The longest message: a few paragraphs, said on the form beside the box.
    MAX_LENGTH = 1000

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="patient_messages")
    invitation = models.OneToOneField(Invitation, on_delete=models.CASCADE, related_name="patient_message")
    text = models.TextField(max_length=MAX_LENGTH)
    submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["submitted_at"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="patient_message_not_empty")]

    def __str__(self) -> str:
        return f"Patient's message at {self.session}"
