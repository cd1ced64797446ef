"""Export jobs as the admin page and the API see them: start one (queued, run in the background
where a worker is configured) and look them up (404 for anyone but the clinic's admins)."""

from __future__ import annotations

import uuid
from functools import partial

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import Http404

from clinics.models import Clinic
from clinics.permissions import require_clinic_admin
from monitoring import tasks
from monitoring.exports.base import ExportFilters
from monitoring.exports.services import check_request
from monitoring.models import ExportJob


def export_job_get_for_user(*, user: User | AnonymousUser, code: object) -> ExportJob:
    """The export job with this code, or 404 unless the user is an active admin of its clinic."""
    try:
        key = uuid.UUID(str(code))
    except ValueError:
        raise Http404("No such export.") from None
    job = (
        ExportJob.objects.filter(clinic__in=Clinic.objects.administered_by(user), code=key)
        .select_related("clinic", "requested_by")
        .first()
    )
    if job is None:
        raise Http404("No such export.")
    return job


def export_jobs_for_user(*, user: User | AnonymousUser, clinic: Clinic, limit: int = 50) -> list[ExportJob]:
    """The clinic's most recent export jobs, for its admins' export page (empty for anyone else)."""
    jobs = ExportJob.objects.filter(clinic=clinic, clinic__in=Clinic.objects.administered_by(user))
    return list(jobs.select_related("requested_by").order_by("-created_at")[:limit])


def export_start(
    *, clinic: Clinic, user: User, identifier: str, fmt: str, filters: ExportFilters
) -> ExportJob:
    """Queue an export as a background job and return it; the task is enqueued on commit.

    With the default immediate task backend and no surrounding transaction the job has run by
    the time this returns ("with no worker configured they run inline"); with the database
    worker or RQ it runs in a worker and the page polls ``progress``.
    """
    require_clinic_admin(user=user, clinic=clinic, action="export its data")
    check_request(clinic=clinic, identifier=identifier, fmt=fmt, filters=filters)
    job = ExportJob.objects.create(
        clinic=clinic, requested_by_id=user.pk, exporter=identifier, format=fmt, filters=filters.to_json()
    )
    transaction.on_commit(partial(tasks.export_job_run.enqueue, job.pk))
    return job
