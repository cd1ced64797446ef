"""Background work through the tasks API (django-tasks; Django 6's django.tasks later).

Tasks take ids and call a service. With the default immediate backend they run inline; with
the database worker or RQ they run in a worker. Services enqueue them on commit.

This module sits above the services it calls and below the services that enqueue: a task's
target never imports this module (``tests/test_architecture.py`` fails on any import cycle), so
what a task runs lives apart from what queues it (``exports.worker`` runs a job that
``exports.jobs`` started).
"""

from __future__ import annotations

from django_tasks import task

from clinics.models import Clinic
from monitoring.collection import invitations
from monitoring.exports import worker
from monitoring.flags import services as flag_services


@task()
def episodes_analyse(episode_ids: list[int]) -> int:
    """Store the new flags (and notifications) of episodes whose answers changed."""
    stored = flag_services.episodes_flags_refresh(episode_ids=episode_ids)
    return sum(len(flags) for flags in stored.values())


@task()
def reminder_send(invitation_id: int) -> bool:
    return invitations.reminder_send(invitation_id=invitation_id)


@task()
def clinic_estimate_refresh(clinic_id: int) -> int:
    """A new estimate (and calibration) for the clinic, then its episodes' snapshots with it."""
    clinic = Clinic.objects.get(pk=clinic_id)
    estimate = flag_services.clinic_estimate_refresh(clinic=clinic)
    flag_services.clinic_snapshots_refresh(clinic=clinic)
    return estimate.pk


@task()
def clinic_snapshots_refresh(clinic_id: int) -> int:
    """Re-snapshot the clinic's episodes with its present parameters."""
    return flag_services.clinic_snapshots_refresh(clinic=Clinic.objects.get(pk=clinic_id))


@task()
def export_job_run(job_id: int) -> str:
    return worker.export_job_run(job_id=job_id).status
