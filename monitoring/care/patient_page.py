"""The patient page's content, rendered once per state of what it shows, and cached.

The page (``care/_patient_body.html``) is a function of: the patient (their fields, therapist
and appointments), the episode it shows (its fields and its revision: ``EpisodeRevision``, which
the database advances on every change to its sessions, answers, flags and acknowledgements,
safety alerts, analysis snapshot, patient messages, form links and the patient's appointments),
the colleagues it names, the clinic's settings, its latest estimate and expected-recovery state,
whether the reader may act on the patient (a supervisor only looks, and does not read the
patient's messages), the reader's language, the date (today's session, upcoming appointments)
and the code's version. A read whose digest of these matches the cached entry serves the stored
HTML; anything else renders it again and replaces the entry. The reads that must happen on every
view still do: the access entry, the notifications marked read, the audited read of the
patient's messages. The forms' CSRF token is not stored: the entry holds a random placeholder
that each response replaces with the reader's own token.

One entry per patient, kind of reader and language
(``bordin:patient-page:<patient id>:<0|1>:<language>``); erasing the patient deletes them all
(:func:`patient_page_forget`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, F, Max, Q
from django.forms.models import model_to_dict
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from clinics.models import Episode, Patient
from monitoring.care.release import cache_language, cache_languages
from monitoring.flags.selectors import clinic_estimate_latest
from monitoring.models import Flag, Instrument, SafetyAlert

#: How long an entry stays if the page is not opened again (it is replaced whenever the page
#: changes, so this only bounds the memory of pages nobody reads).
PAGE_CACHE_SECONDS = 7 * 24 * 3600


def patient_page_key(patient_id: int, may_change: bool, language: str) -> str:
    return f"bordin:patient-page:{patient_id}:{int(may_change)}:{cache_language(language)}"


def patient_page_forget(patient_ids: Sequence[int]) -> None:
    """Drop the cached pages of these patients in every language (an erasure: nothing of them may
    stay)."""
    languages = cache_languages()
    # The keys of releases before 2026-11-28, without a language (see rows_cache_forget).
    legacy = [f"bordin:patient-page:{p}:{int(m)}" for p in patient_ids for m in (False, True)]
    cache.delete_many(
        [patient_page_key(p, m, code) for p in patient_ids for m in (False, True) for code in languages]
        + legacy
    )


@dataclass(frozen=True)
class PageContent:
    """What the view needs besides the HTML: the flags shown (their notifications are marked
    read), the sessions shown (their patient messages are read, audited), whether there are
    charts (the page then loads plotly)."""

    html: str  # with the CSRF placeholder
    placeholder: str
    flag_ids: list[int]
    sessions: dict[int, int]  # session id: number
    has_charts: bool

    def for_request(self, request: HttpRequest) -> SafeString:
        return mark_safe(self.html.replace(self.placeholder, get_token(request)))  # noqa: S308 (our template's output)


def page_digest(*, patient: Patient, may_change: bool, code_version: str) -> str | None:
    """The digest of the state the patient's page shows (module docstring); None when it cannot
    be told (no episode, or an episode without a revision counter): the page is then rendered."""
    episode = (
        Episode.objects.filter(patient=patient)
        .order_by(F("ended_on").desc(nulls_first=True), "-started_on")
        .values("pk", "therapist_id", "treatment", "started_on", "ended_on", "revision_counter__revision")
        .first()
    )
    if episode is None or episode["revision_counter__revision"] is None:
        return None
    clinic = patient.clinic
    estimate = clinic_estimate_latest(clinic=clinic)
    finished = Episode.objects.filter(patient__clinic=clinic).exclude(ended_on=None)
    therapist = patient.therapist
    # Colleagues named on the page (who acknowledged a flag, who followed up a safety alert): a
    # change of name shows at once, though it moves no episode's revision.
    named = (
        User.objects.filter(
            Q(pk__in=Flag.objects.filter(episode_id=episode["pk"]).values("acknowledged_by"))
            | Q(pk__in=SafetyAlert.objects.filter(episode_id=episode["pk"]).values("followed_up_by"))
        )
        .order_by("pk")
        .values_list("pk", "first_name", "last_name", "email")
    )
    state = (
        code_version,
        get_language(),
        may_change,
        date.today(),
        sorted(model_to_dict(patient).items()),
        (therapist.pk, therapist.get_full_name(), therapist.email) if therapist else None,
        sorted(episode.items()),
        list(named),
        # The answers table's columns come from the clinic's instrument as loaded.
        sorted(Instrument.objects.aggregate(n=Count("pk"), last=Max("loaded_at")).items()),
        sorted(model_to_dict(clinic).items()),
        estimate.pk if estimate else None,
        sorted(finished.aggregate(n=Count("pk"), last=Max("ended_on")).items()),
    )
    return hashlib.sha256(repr(state).encode()).hexdigest()


def page_cached(*, patient: Patient, may_change: bool, digest: str | None) -> PageContent | None:
    if digest is None:
        return None
    entry = cache.get(patient_page_key(patient.pk, may_change, get_language()))
    # Plain values only (a tuple of a digest and a dict): an entry written by another release
    # still unpickles, and its digest does not match.
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == digest and isinstance(entry[1], dict):
        try:
            return PageContent(**entry[1])
        except TypeError:
            return None
    return None


def page_render(
    *, patient: Patient, may_change: bool, digest: str | None, context: dict[str, Any]
) -> PageContent:
    """Render the page's content from ``context`` (the dashboard and what goes with it) and keep
    it under ``digest``."""
    placeholder = f"csrf-{secrets.token_hex(16)}"
    html = render_to_string("care/_patient_body.html", {**context, "csrf_token": placeholder}).strip()
    dashboard = context["d"]
    content = PageContent(
        html=html,
        placeholder=placeholder,
        flag_ids=[f.pk for v in dashboard.flags for f in v.flags],
        sessions={row.session.pk: row.session.number for row in dashboard.sessions},
        has_charts=bool(context.get("charts_html")),
    )
    if digest is not None:
        key = patient_page_key(patient.pk, may_change, get_language())
        cache.set(key, (digest, asdict(content)), PAGE_CACHE_SECONDS)
        # An erasure that committed while this page was rendered has already forgotten the
        # patient's entries: the one just written must not stay.
        if not Patient.objects.filter(pk=patient.pk).exists():
            cache.delete(key)
    return content
