"""Running a queued export job (what the background task calls): write the file under
MEDIA_ROOT/exports/<code>/, with progress, or record why it failed."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from clinics.errors import ApplicationError
from monitoring.exports.base import ExportFilters, ProgressCallback
from monitoring.exports.registry import exporter_get
from monitoring.exports.services import VIA_JOB, export_directory, export_run
from monitoring.models import ExportJob

logger = logging.getLogger(__name__)


#: Only one progress write per this many percentage points: a big export is not slowed by them.
PROGRESS_STEP = 5


def export_job_run(*, job_id: int) -> ExportJob:
    """Run a queued job: write its file under MEDIA_ROOT/exports/<code>/, or record why it failed.

    The job is claimed with a conditional update, so a task delivered twice runs it once. The
    requester's access is checked again here: an admin removed while the job waited gets nothing.
    Never raises for a failed export: the job's status and error say what happened.
    """
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=now, progress=1
    )
    job = ExportJob.objects.select_related("clinic", "requested_by").get(pk=job_id)
    if not claimed:
        return job
    directory = export_directory(job)
    try:
        if job.requested_by is None:
            raise PermissionDenied("The person who asked for this export no longer has an account.")
        filters = ExportFilters.from_json(job.filters, need_key=True)
        exporter = exporter_get(job.exporter)
        total = exporter.count(clinic=job.clinic, filters=filters)
        rendered = export_run(
            clinic=job.clinic,
            user=job.requested_by,
            identifier=job.exporter,
            fmt=job.format,
            filters=filters,
            via=VIA_JOB,
            job=job,
            on_rows=_progress_writer(job.pk, total),
        )
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / Path(rendered.filename).name
        partial_path = target.with_suffix(target.suffix + ".part")
        with open(partial_path, "wb") as out:
            if isinstance(rendered.content, bytes):
                out.write(rendered.content)
            else:
                for block in rendered.content:
                    out.write(block)
        os.replace(partial_path, target)
    except (ApplicationError, PermissionDenied) as exc:
        return _job_failed(job, directory, str(getattr(exc, "message", exc)) or "Not allowed.")
    except Exception as exc:
        logger.exception("Export job %s failed", job.code)
        return _job_failed(
            job, directory, f"The export failed unexpectedly ({type(exc).__name__}); it has been logged."
        )
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE,
        progress=100,
        finished_at=timezone.now(),
        file_path=str(target.relative_to(Path(settings.MEDIA_ROOT))),
        filename=rendered.filename,
        content_type=rendered.content_type,
        filters=ExportFilters.without_key(job.filters),
    )
    job.refresh_from_db()
    return job


def _job_failed(job: ExportJob, directory: Path, reason: str) -> ExportJob:
    shutil.rmtree(directory, ignore_errors=True)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.FAILED,
        error=reason,
        finished_at=timezone.now(),
        filters=ExportFilters.without_key(job.filters),
    )
    job.refresh_from_db()
    return job


def _progress_writer(job_id: int, total: int | None) -> ProgressCallback:
    """A callback writing a job's progress (5-95%) as rows are written, in steps."""
    last = [1]

    def write(rows: int) -> None:
        percent = 50 if not total else 5 + int(90 * min(rows, total) / total)
        if percent >= last[0] + PROGRESS_STEP:
            last[0] = percent
            ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(progress=percent)

    return write
