from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_bundled_instruments(sender: AppConfig, **kwargs: Any) -> None:
    # Every installation gets the default instruments without a separate step; loading is
    # idempotent and never alters a version that answers already point at.
    from monitoring.instruments.services import instruments_load_bundled

    instruments_load_bundled(using=kwargs.get("using", "default"))


#: Management commands that run background tasks (RQ forks a process per job).
TASK_WORKERS = frozenset({"rqworker", "db_worker"})


def runs_tasks(argv: Sequence[str]) -> bool:
    """Whether this process is a task worker (``manage.py rqworker ...``, ``db_worker``)."""
    return len(argv) > 1 and argv[1] in TASK_WORKERS


def warm_up_analysis(process: str) -> None:
    """Load the analysis (the rules' machine code, scipy) now rather than in the first job or
    request (docs/performance.md, bench/jobs.py). A failure is logged, never raised: a worker that
    cannot warm up still serves the patient forms, and the analysis reports its own error when
    it runs."""
    from monitoring.analytics.analysis import warm_up

    log = logging.getLogger(__name__)
    started = time.perf_counter()
    try:
        warm_up()
    except Exception:
        log.exception("%s: the analysis could not be loaded in advance", process)
        return
    log.info("%s: analysis loaded in %.1f s", process, time.perf_counter() - started)


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
        if runs_tasks(sys.argv):
            # Before the worker forks its first job (RQ forks one per job): each job then starts
            # with the analysis loaded instead of paying about a second for it.
            warm_up_analysis("task worker")
