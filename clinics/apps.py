from django.apps import AppConfig


class ClinicsConfig(AppConfig):
    name = "clinics"
    verbose_name = "Clinics"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from clinics import models

        for model in (models.Clinic, models.Membership, models.Patient, models.Episode, models.Session):
            auditlog.register(model)
