"""Reads for collecting answers: the sessions a clinic tablet can hand to a patient."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, QuerySet

from clinics.models import Session
from clinics.permissions import patients_changeable_by
from monitoring.models import Response


def sessions_for_kiosk(*, user: User | AnonymousUser, since: date, today: date) -> QuerySet[Session]:
    """Held or scheduled sessions from ``since`` to ``today`` without the patient's answers, for
    the tablet picker: today's first, then the past ones, most recent first. Sessions after today
    are left out: handing the tablet over marks the session held, which a future one is not.
    Only patients the user may act on: a supervisor hands no tablet over."""
    return (
        Session.objects.filter(episode__patient__in=patients_changeable_by(user=user), episode__ended_on=None)
        .filter(date__gte=since, date__lte=today, status__in=[Session.Status.HELD, Session.Status.SCHEDULED])
        .exclude(Exists(Response.objects.filter(session=OuterRef("pk"), rater="patient", measure="alliance")))
        .select_related("episode__patient__clinic")
        .order_by("-date", "episode__patient__label", "-number")
    )
