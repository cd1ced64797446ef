"""Questionnaires as data, and the answers patients and therapists give.

An instrument version's *structure* (items, subscales, keying, scale) is fixed once loaded:
answers point at its items, so changing it would silently change stored results. New wording
in another language is a translation of the same version; a new structure is a new version.
Raw item answers are stored; scale scores are always derived (``monitoring.analytics``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clinics.models import Session


class Rater(models.TextChoices):
    PATIENT = "patient", _("Patient")
    THERAPIST = "therapist", _("Therapist")


class Instrument(models.Model):
    code = models.SlugField(max_length=50)
    version = models.PositiveIntegerField()
    rater = models.CharField(max_length=16, choices=Rater.choices)
    scale_min = models.PositiveSmallIntegerField()
    scale_max = models.PositiveSmallIntegerField()
    subscales = models.JSONField(help_text=_("Subscale codes in display order, e.g. ['goal', 'task', 'bond']."))
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="instrument_code_version_unique"),
            models.CheckConstraint(condition=Q(scale_min__lt=models.F("scale_max")), name="instrument_scale_ordered"),
            models.CheckConstraint(condition=Q(rater__in=["patient", "therapist"]), name="instrument_rater_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

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
    source = models.CharField(max_length=200, blank=True, help_text=_("Where the wording comes from (licence)."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "language"], name="instrument_translation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} [{self.language}]"


class Response(models.Model):
    """One completed questionnaire for one session, by the patient or by the therapist."""

    class Source(models.TextChoices):
        LINK = "link", _("Patient link")
        TABLET = "tablet", _("Clinic tablet")
        STAFF = "staff", _("Entered by staff from paper")
        IMPORT = "import", _("Imported")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="responses")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="responses")
    rater = models.CharField(max_length=16, choices=Rater.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    submitted_at = models.DateTimeField()
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # One patient rating and one therapist rating per session: a double submission,
            # whatever its path, is refused by the database itself.
            models.UniqueConstraint(fields=["session", "rater"], name="response_one_per_session_and_rater"),
            models.CheckConstraint(condition=Q(rater__in=["patient", "therapist"]), name="response_rater_valid"),
            models.CheckConstraint(
                condition=Q(source__in=["link", "tablet", "staff", "import"]), name="response_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater} response to {self.session}"


class Answer(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(InstrumentItem, on_delete=models.PROTECT, related_name="+")
    value = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "item"], name="answer_one_per_item"),
            # Bordin's analysis thresholds are in points of a 1-5 scale; load_instrument only
            # accepts 1-5 instruments, so this is the scale of every stored answer.
            models.CheckConstraint(condition=Q(value__gte=1) & Q(value__lte=5), name="answer_value_in_scale"),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.value}"
