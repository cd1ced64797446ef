"""Reads. Every query that returns patient data starts here and applies the access rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from clinics.models import Membership, Patient, Session
from monitoring.analytics.scoring import score_items
from monitoring.models import Answer, Instrument, Response


def patients_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Patient]:
    """Every patient the user may see: a therapist their own, an admin their clinic's.

    The one access rule for patient data; every page and endpoint reaches patients through it.
    """
    if not user.is_authenticated:
        return Patient.objects.none()
    memberships = Membership.objects.filter(user=user, is_active=True)
    admin_clinics = memberships.filter(role=Membership.Role.ADMIN).values("clinic")
    therapist_clinics = memberships.filter(role=Membership.Role.THERAPIST).values("clinic")
    return Patient.objects.filter(Q(clinic__in=admin_clinics) | Q(clinic__in=therapist_clinics, therapist=user))


def patient_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Patient]:
    """Active patients the user may see, with their number of sessions held."""
    return (
        patients_visible_to(user=user)
        .filter(is_active=True)
        .select_related("therapist", "clinic")
        .annotate(sessions_held=Count("episodes__sessions", filter=Q(episodes__sessions__status="held")))
        .order_by("label")
    )


def patient_get_for_user(*, user: AbstractBaseUser | AnonymousUser, code: object) -> Patient:
    """The patient with this code, or 404 if it does not exist or the user may not see it."""
    return get_object_or_404(patients_visible_to(user=user).select_related("clinic", "therapist"), code=code)


def session_get_for_user(*, user: AbstractBaseUser | AnonymousUser, code: object) -> Session:
    return get_object_or_404(
        Session.objects.filter(episode__patient__in=patients_visible_to(user=user)).select_related(
            "episode__patient__clinic", "episode__therapist"
        ),
        code=code,
    )


def sessions_for_kiosk(*, user: AbstractBaseUser | AnonymousUser, since: date) -> QuerySet[Session]:
    """Recent held or scheduled sessions without the patient's answers, for the tablet picker."""
    return (
        Session.objects.filter(episode__patient__in=patients_visible_to(user=user), episode__ended_on=None)
        .filter(date__gte=since, status__in=[Session.Status.HELD, Session.Status.SCHEDULED])
        .exclude(responses__rater="patient")
        .select_related("episode__patient")
        .order_by("-date", "episode__patient__label")
    )


def scores_for_episodes(*, episode_ids: Iterable[int], rater: str = "patient") -> pd.DataFrame:
    """Scale scores, one row per response: ``patient`` (the episode id), ``session`` (number),
    ``goal``, ``task``, ``bond``, ``total``; the input of ``monitoring.analytics.analyse``.

    Each response is scored with its own instrument version's structure (methods section 1).
    """
    rows = Answer.objects.filter(response__session__episode_id__in=list(episode_ids), response__rater=rater).values_list(
        "response_id", "response__session__episode_id", "response__session__number", "response__instrument_id",
        "item__number", "value",
    )
    answers = pd.DataFrame.from_records(
        list(rows), columns=["response", "patient", "session", "instrument", "item", "value"]
    )
    columns = ["patient", "session", "goal", "task", "bond", "total"]
    if answers.empty:
        return pd.DataFrame(columns=columns).astype({"patient": "int64", "session": "int64"})
    frames = []
    for instrument_id, group in answers.groupby("instrument", sort=False):
        structure = _instrument_structure(int(instrument_id))
        scored = score_items(group[["response", "item", "value"]], **structure)
        keys = group.drop_duplicates("response").set_index("response")[["patient", "session"]]
        frames.append(scored.join(keys, on="response"))
    return pd.concat(frames, ignore_index=True)[columns].sort_values(["patient", "session"], ignore_index=True)


def _instrument_structure(instrument_id: int) -> dict[str, Any]:
    instrument = Instrument.objects.prefetch_related("items").get(pk=instrument_id)
    subscales: dict[str, list[int]] = {}
    for item in instrument.items.all():
        subscales.setdefault(item.subscale, []).append(item.number)
    return {
        "subscales": subscales,
        "reverse_keyed": {i.number for i in instrument.items.all() if i.reverse_keyed},
        "scale_min": instrument.scale_min,
        "scale_max": instrument.scale_max,
    }


def response_scores(*, response: Response) -> list[dict[str, Any]]:
    """One response's subscale and total scores, for the patient's own thank-you page."""
    answers = pd.DataFrame.from_records(
        list(response.answers.values_list("response_id", "item__number", "value")), columns=["response", "item", "value"]
    )
    scored = score_items(answers, **_instrument_structure(response.instrument_id)).iloc[0]
    wording = response.instrument.translation(get_language() or "en")
    names = {**wording.subscale_names, "total": _("Overall")}
    return [
        {"scale": scale, "name": names.get(scale, scale), "score": round(float(scored[scale]), 1)}
        for scale in [*response.instrument.subscales, "total"]
        if not pd.isna(scored[scale])
    ]
