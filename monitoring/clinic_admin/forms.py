"""Forms of the clinic admin area. Each settings field says, in a sentence, what it changes."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.models import User

from clinics.models import Clinic, Episode, FormChannel, Membership, Patient
from clinics.validation import no_control_characters, validate_plausible_date
from monitoring.instruments.measures import outcome_instruments
from monitoring.models import Instrument


class NoColon:
    """Labels without Django's trailing colon: the layout already sets them apart."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]


def _date(label: str, *, required: bool = True) -> forms.DateField:
    """A date field with the browser's date picker, for a date a clinic can mean (1900 to two
    years ahead, clinics.validation): year 1 or 9999 is refused with a message."""
    return forms.DateField(
        label=label,
        required=required,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_plausible_date],
    )


def _choices(field: forms.Field) -> forms.ChoiceField:
    return cast(forms.ChoiceField, field)


def _therapist_choices(clinic: Clinic) -> list[tuple[int, str]]:
    memberships = Membership.objects.therapists().filter(clinic=clinic)
    return [(m.user_id, m.user.get_full_name() or m.user.email) for m in memberships.select_related("user")]


class StaffInviteForm(NoColon, forms.Form):
    email = forms.EmailField(label="Email", max_length=254)  # the column's length; the validator allows 320
    name = forms.CharField(label="Name", max_length=150, required=False, validators=[no_control_characters])
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices, initial=Membership.Role.THERAPIST)


class PatientForm(NoColon, forms.ModelForm):
    therapist = forms.TypedChoiceField(label="Therapist", coerce=int)
    treatment = forms.ChoiceField(label="Treatment", choices=Episode.Treatment.choices)
    started_on = _date("Start of treatment")

    class Meta:
        model = Patient
        fields = ["label", "external_id", "language", "contact_email", "contact_phone"]
        labels = {
            "label": "Label",
            "external_id": "Health-record id",
            "language": "Language of the form",
            "contact_email": "Email for form links",
            "contact_phone": "Mobile number for form links",
        }
        widgets = {"language": forms.Select(choices=settings.LANGUAGES)}

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["therapist"]).choices = _therapist_choices(clinic)


class PatientEditForm(NoColon, forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["label", "external_id", "language", "contact_email", "contact_phone", "form_channel"]
        labels = {**PatientForm.Meta.labels, "form_channel": "Form links go by"}
        widgets = PatientForm.Meta.widgets

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["form_channel"]).choices = [
            ("", "Email if on file, else text message"),
            *FormChannel.choices,
        ]


class TransferForm(NoColon, forms.Form):
    therapist = forms.TypedChoiceField(label="New therapist", coerce=int)
    on = _date("From")

    def __init__(self, *args: Any, clinic: Clinic, current: User | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["therapist"]).choices = [
            c for c in _therapist_choices(clinic) if not current or c[0] != current.pk
        ]


class EpisodeOpenForm(NoColon, forms.Form):
    treatment = forms.ChoiceField(label="Treatment", choices=Episode.Treatment.choices)
    started_on = _date("Starts")


class DateForm(NoColon, forms.Form):
    on = _date("On")


class ClinicSettingsForm(NoColon, forms.ModelForm):
    class Meta:
        model = Clinic
        fields = list(Clinic.SETTINGS)
        labels = {
            "name": "Clinic name",
            "instrument_code": "Questionnaire",
            "default_language": "Default language for new patients",
            "link_expiry_hours": "Form links expire after (hours)",
            "reminder_delay_hours": "Send one reminder after (hours)",
            "patients_see_results": "Patients see their own results",
            "therapist_rating_enabled": "Therapists rate sessions too",
            "sensitivity": "False-alarm budget",
            "low_alliance_cutoff": "Alliance counts as low below (total, 1-5)",
            "low_alliance_sessions": "… for this many sessions in a row",
            "outcome_measures": "Symptom measures with each session",
            "outcome_timing": "When patients answer the symptom measures",
            "crisis_text": "What a patient reporting thoughts of self-harm sees",
            "retention_years": "Keep data of discharged patients for (years)",
            "idle_timeout_minutes": "Sign staff out after inactivity (minutes)",
        }
        help_texts = {
            "name": "Shown to patients on the form and in the messages that carry their links.",
            "instrument_code": "The patient form used for new links; answers already stored keep their own version.",
            "default_language": "Patients can still switch language on the form.",
            "link_expiry_hours": "After this, an unused link shows “expired” and the patient needs a new one.",
            "reminder_delay_hours": "If the form is not done by then, the patient gets one reminder with the same "
            "link (only for links sent by email or text message). 0 turns reminders off.",
            "patients_see_results": "After sending, the thank-you page shows the patient their session averages. "
            "Some clinics consider alliance results sensitive; off by default.",
            "therapist_rating_enabled": "The patient's therapist can fill in the parallel therapist form for each "
            "session; the patient page then compares both views.",
            "low_alliance_cutoff": "An absolute signal beside the flags that compare patients with "
            "themselves: a total alliance below this score keeps the patient under “Needs attention” "
            "with the reason “Alliance has stayed low”. Between 1.5 and 4.0; 2.5 is the middle of the "
            "1-5 answer scale (“sometimes”).",
            "low_alliance_sessions": "How many sessions in a row the total must stay below the cut-off "
            "(2 to 10). Once acknowledged, it is raised again only after a session at or above the cut-off.",
            "outcome_measures": "Asked on the patient's form beside the alliance (about 2 minutes for both). "
            "With them come reliable change, recovery, not-on-track and the safety alert.",
            "outcome_timing": "After the session, one link asks everything. Before the session, the symptom "
            "questions get a link of their own (the session page offers it), so they describe the weeks "
            "before the session.",
            "crisis_text": "Shown at once when a PHQ-9 item 9 answer is above “Not at all”; the therapist is "
            "e-mailed at the same moment. Leave empty for the default text, which points to emergency "
            "numbers and crisis lines; write your clinic's own numbers and hours here.",
            "retention_years": "After this many years from discharge, a patient's data is due for deletion.",
            "idle_timeout_minutes": "Protects patient data on shared computers.",
        }
        widgets = {
            "default_language": forms.Select(choices=settings.LANGUAGES),
            "crisis_text": forms.Textarea(attrs={"rows": 4}),
            "low_alliance_cutoff": forms.NumberInput(attrs={"step": "0.1", "min": "1.5", "max": "4"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each questionnaire by its name (its latest version's English name), not its code.
        names: dict[str, str] = {}
        for instrument in Instrument.objects.filter(rater="patient", kind=Instrument.Kind.ALLIANCE).order_by(
            "code", "-version"
        ):
            if instrument.code not in names:
                names[instrument.code] = (
                    f"{instrument.translation('en').name} (alliance form, version {instrument.version})"
                )
        self.fields["instrument_code"].widget = forms.Select(choices=list(names.items()))
        measures = outcome_instruments()
        self.fields["outcome_measures"] = forms.TypedMultipleChoiceField(
            label=self.fields["outcome_measures"].label,
            help_text=self.fields["outcome_measures"].help_text,
            choices=[(code, instrument.translation("en").name) for code, instrument in measures.items()],
            widget=forms.CheckboxSelectMultiple,
            required=False,
        )
        self.fields["crisis_text"].widget.attrs["placeholder"] = str(Clinic.DEFAULT_CRISIS_TEXT)
        # Older clients (and scripts) that post the settings without it keep the clinic's choice.
        self.fields["outcome_timing"].required = False
        self.fields["low_alliance_cutoff"].required = False
        self.fields["low_alliance_sessions"].required = False
        self.fields["sensitivity"].help_text = (
            "How many false alarms the caseload may raise: sessions per 100 of a patient whose alliance "
            "is steady that put the patient under “Needs attention”, counting every rule and scale "
            "together. The thresholds are calibrated to this budget on this clinic's own data each "
            "night, so the same setting means the same for quiet and for noisy patients. Fewer alarms "
            "also means later or missed ones: the methods documentation shows the trade-off."
        )
        # The model's ranges (its validators refuse anything outside them), shown by the browser too.
        for name, low, high in (
            ("link_expiry_hours", 1, Clinic.MAX_LINK_EXPIRY_HOURS),
            ("reminder_delay_hours", 0, Clinic.MAX_LINK_EXPIRY_HOURS),
            ("retention_years", 1, Clinic.MAX_RETENTION_YEARS),
            ("idle_timeout_minutes", Clinic.MIN_IDLE_TIMEOUT_MINUTES, Clinic.MAX_IDLE_TIMEOUT_MINUTES),
            ("low_alliance_sessions", 2, 10),
        ):
            field = cast(forms.IntegerField, self.fields[name])
            field.min_value, field.max_value = low, high

    def clean_outcome_timing(self) -> str:
        return self.cleaned_data.get("outcome_timing") or self.instance.outcome_timing

    def clean_low_alliance_cutoff(self) -> float:
        value = self.cleaned_data.get("low_alliance_cutoff")
        return self.instance.low_alliance_cutoff if value is None else float(value)

    def clean_low_alliance_sessions(self) -> int:
        value = self.cleaned_data.get("low_alliance_sessions")
        return self.instance.low_alliance_sessions if value is None else int(value)


class ReportFilterForm(NoColon, forms.Form):
    start = _date("From", required=False)
    end = _date("To", required=False)
    therapist = forms.TypedChoiceField(label="Therapist", required=False, coerce=int, empty_value=None)
    treatment = forms.ChoiceField(label="Treatment", required=False)

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self.fields["therapist"]).choices = [("", "All therapists"), *_therapist_choices(clinic)]
        _choices(self.fields["treatment"]).choices = [("", "All treatments"), *Episode.Treatment.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The period must start before it ends.")
        return data


class ExportForm(NoColon, forms.Form):
    report = forms.ChoiceField(label="Report")
    format = forms.ChoiceField(label="Format")
    start = _date("Sessions from", required=False)
    end = _date("to", required=False)
    therapist = forms.TypedChoiceField(label="Therapist", required=False, coerce=int, empty_value=None)
    treatment = forms.ChoiceField(label="Treatment", required=False)
    pseudonymise = forms.BooleanField(
        label="Pseudonymise for research",
        required=False,
        help_text="Patient ids become keyed codes; labels, health-record ids, therapist names and notes are left out.",
    )
    study_key = forms.CharField(
        label="Study key (optional)",
        required=False,
        strip=False,
        max_length=200,
        # Never sent back to the browser, not even on an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Pseudonymised exports with the same study key get the same codes, so a study's "
        "exports can be joined; without one every export gets codes of its own. At least 16 "
        "characters; implies pseudonymise. Keep it with the study's records: Bordin keeps only its "
        "fingerprint.",
    )
    fhir_bundle = forms.ChoiceField(
        label="FHIR bundle",
        required=False,
        choices=[
            ("collection", "Collection: to file in a health record"),
            ("transaction", "Transaction: to load into a FHIR server"),
        ],
        initial="collection",
        help_text="For the FHIR format only. A transaction bundle loaded twice creates nothing new.",
    )

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        from monitoring.exports import EXPORTS, FORMAT_NAMES

        super().__init__(*args, **kwargs)
        _choices(self.fields["report"]).choices = [
            (e.identifier, e.verbose_name) for e in EXPORTS.values() if not e.needs_patient
        ]
        _choices(self.fields["format"]).choices = list(FORMAT_NAMES.items())
        _choices(self.fields["therapist"]).choices = [("", "All therapists"), *_therapist_choices(clinic)]
        _choices(self.fields["treatment"]).choices = [("", "All treatments"), *Episode.Treatment.choices]

    def clean_study_key(self) -> str:
        from monitoring.exports import MIN_STUDY_KEY

        key = str(self.cleaned_data.get("study_key") or "")
        if key and len(key) < MIN_STUDY_KEY:
            raise forms.ValidationError(f"A study key needs at least {MIN_STUDY_KEY} characters.")
        return key

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["fhir_bundle"] = data.get("fhir_bundle") or "collection"
        if data["fhir_bundle"] != "collection" and data.get("format") != "fhir":
            self.add_error("fhir_bundle", "Only a FHIR export has a bundle type.")
        return data


class AuditFilterForm(NoColon, forms.Form):
    KINDS = [
        ("", "Everything"),
        ("reads", "Reads of patient data"),
        ("changes", "Changes"),
        ("sign-ins", "Sign-ins and account events"),
        ("exports", "Exports"),
        ("erasures", "Erasures"),
    ]
    kind = forms.ChoiceField(label="What", required=False, choices=KINDS)
    who = forms.CharField(label="Who (email)", required=False, max_length=254)
    patient = forms.CharField(label="Patient (label or record number)", required=False, max_length=60)
    start = _date("From", required=False)
    end = _date("To", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The period must start before it ends.")
        return data
