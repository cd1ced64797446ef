"""Reads behind the clinic admin area: staff and patient lists, and the retention check."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from clinics.models import Clinic, Episode, Membership, Patient, SupervisorAssignment


def staff_for_clinic(*, clinic: Clinic) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(clinic=clinic)
        .select_related("user")
        .annotate(
            active_patients=Count(
                "user__patients", filter=Q(user__patients__clinic=clinic, user__patients__is_active=True)
            )
        )
        .order_by("-is_active", "user__last_name", "user__first_name")
    )


def staff_with_supervision(*, clinic: Clinic) -> list[Membership]:
    """The staff list, each supervisor with ``supervises``: the therapists assigned to them."""
    memberships = list(staff_for_clinic(clinic=clinic))
    assigned: dict[int, list[Membership]] = {}
    for row in SupervisorAssignment.objects.filter(supervisor__clinic=clinic).select_related(
        "therapist__user"
    ):
        assigned.setdefault(row.supervisor_id, []).append(row.therapist)
    for m in memberships:
        m.supervises = sorted(  # type: ignore[attr-defined]
            assigned.get(m.pk, []), key=lambda t: (t.user.last_name, t.user.first_name, t.user.email)
        )
    return memberships


def patients_past_retention(*, clinic: Clinic, today: date) -> QuerySet[Patient]:
    """Discharged patients whose last episode ended more than the clinic's retention period ago:
    their data is due for deletion (the admin decides; erasure is an audited action)."""
    year = today.year - clinic.retention_years
    cutoff = (
        today.replace(year=year, day=28) if (today.month, today.day) == (2, 29) else today.replace(year=year)
    )
    open_episode = Episode.objects.filter(patient=OuterRef("pk"), ended_on=None)
    recent_episode = Episode.objects.filter(patient=OuterRef("pk"), ended_on__gt=cutoff)
    return (
        Patient.objects.filter(clinic=clinic, is_active=False)
        .exclude(Exists(open_episode))
        .exclude(Exists(recent_episode))
    )


def patients_for_admin(*, clinic: Clinic, active: bool, query: str = "") -> QuerySet[Patient]:
    patients = Patient.objects.filter(clinic=clinic, is_active=active).select_related("therapist")
    patients = patients.search(query)
    return patients.annotate(
        open_episodes=Count("episodes", filter=Q(episodes__ended_on=None)),
        sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")),
    ).order_by("label")
