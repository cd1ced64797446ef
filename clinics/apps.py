from django.apps import AppConfig


def withheld(value: str) -> str:
    """What the audit trail keeps of a patient identifier or a free-text note: that it changed,
    never the value (an erased patient's identifiers must not survive in the trail)."""
    return "[withheld]"


class ClinicsConfig(AppConfig):
    name = "clinics"
    verbose_name = "Clinics"

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.contrib.auth.models import User

        from clinics import models

        for model in (
            models.Clinic,
            models.Membership,
            models.Episode,
            models.Session,
            models.SupervisorAssignment,
        ):
            auditlog.register(model)
        auditlog.register(
            models.Patient,
            mask_fields=["label", "external_id", "contact_email", "contact_phone"],
            mask_callable="clinics.apps.withheld",
        )
        auditlog.register(models.StaffInvitation, exclude_fields=["token_hash"])
        # Recurring appointments: who planned or changed them; the watermark moves with every
        # appointment handled, which the sessions' own entries already record.
        auditlog.register(models.AppointmentSchedule, exclude_fields=["done_through", "updated_at"])
        # Staff accounts: activation and names. Sign-ins and password changes have their own
        # entries (monitoring.security.signals); last_login would log every sign-in twice.
        auditlog.register(User, include_fields=["email", "first_name", "last_name", "is_active"])
