"""Background work through the tasks API (django-tasks; Django 6's django.tasks later).

Tasks take ids and call a service. With the default immediate backend they run inline; with
the database worker or RQ they run in a worker. Enqueue them on commit.
"""

from __future__ import annotations

from django_tasks import task

from clinics.models import Clinic
from monitoring.collection import invitations as collection_invitations
from monitoring.flags import services as flags_services
from monitoring.flags.services import episode_flags_refresh


@task()
def episode_analyse(episode_id: int) -> int:
    return len(episode_flags_refresh(episode_id=episode_id))


@task()
def reminder_send(invitation_id: int) -> bool:
    return collection_invitations.reminder_send(invitation_id=invitation_id)


@task()
def clinic_estimate_refresh(clinic_id: int) -> int:
    return flags_services.clinic_estimate_refresh(clinic=Clinic.objects.get(pk=clinic_id)).pk
