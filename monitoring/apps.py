from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_bundled_instruments(sender: AppConfig, **kwargs: Any) -> None:
    # Every installation gets the default instruments without a separate step; loading is
    # idempotent and never alters a version that answers already point at.
    from monitoring.instruments.services import instruments_load_bundled

    instruments_load_bundled(using=kwargs.get("using", "default"))


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Alliance monitoring"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from monitoring import checks, models  # noqa: F401 - checks registers `check --deploy`'s checks
        from monitoring.security import signals

        signals.connect()
        post_migrate.connect(_load_bundled_instruments, sender=self)
        # Every change to these is kept in the audit trail with who made it (AuditlogMiddleware).
        auditlog.register(models.Response)
        auditlog.register(models.Invitation, exclude_fields=["salt", "token_hash"])
        auditlog.register(
            models.Flag,
            include_fields=["acknowledgement", "acknowledged_note", "acknowledged_at"],
            mask_fields=["acknowledged_note"],
            mask_callable="clinics.apps.withheld",
        )
        auditlog.register(models.Instrument)
        auditlog.register(
            models.SafetyAlert, mask_fields=["follow_up_note"], mask_callable="clinics.apps.withheld"
        )
