"""The caseload's rows, rendered once per state of what each row shows, and cached.

A row (``care/_caseload_row.html``) is a function of the patient's label, code and therapist, and
of everything of their open episode that the database's revision counter covers
(``monitoring.models.EpisodeRevision``: sessions, answers, flags and acknowledgements, safety
alerts, the analysis snapshot); besides those, of the clinic's expected-recovery state and
outcome measures, the reader's language and the code's version. :func:`row_digests` turns that
into one digest per row in a few small queries whatever the caseload's size. A row whose cache
entry holds the same digest is neither computed nor rendered again; the others are computed
together (``caseload_rows``) and their entries replaced. So a caseload of 300 costs its
digests, one cache read and the rows that changed (docs/performance.md).

One entry per patient and language (``bordin:caseload-row:<patient id>:<language>``), so a changed
row replaces its entry, colleagues reading in two languages do not replace each other's, and
erasing the patient deletes them all (:func:`rows_cache_forget`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, QuerySet
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from clinics.models import Clinic, Episode, Patient
from monitoring.care.release import cache_language, cache_languages
from monitoring.care.selectors import caseload_rows
from monitoring.flags import wording
from monitoring.flags.selectors import clinic_estimate_latest

#: How long an entry stays if its patient's caseload is not opened again (it is replaced whenever
#: its row changes, so this only bounds the memory of rows nobody reads).
ROW_CACHE_SECONDS = 7 * 24 * 3600


def row_cache_key(patient_id: int, language: str) -> str:
    return f"bordin:caseload-row:{patient_id}:{cache_language(language)}"


def rows_cache_forget(patient_ids: Sequence[int]) -> None:
    """Drop the cached caseload rows of these patients in every language (an erasure: nothing of
    them may stay)."""
    languages = cache_languages()
    # The keys of releases before 2026-11-28, without a language: an entry written by one may
    # still be in a shared cache (7 days at most), never served again but not to be left.
    legacy = [f"bordin:caseload-row:{p}" for p in patient_ids]
    cache.delete_many([row_cache_key(p, code) for p in patient_ids for code in languages] + legacy)


@dataclass(frozen=True)
class RowFragment:
    """One caseload row as the page needs it: the rendered row and what orders and groups it."""

    patient: Patient
    priority: int
    last_session_date: date | None
    safety: dict[str, Any] | None  # the oldest open safety alert: answer, session, raised at
    symptoms: bool  # the row has symptom scores (the page then shows the symptoms column)
    html: SafeString

    @property
    def attention(self) -> bool:
        return self.priority < wording.NO_PRIORITY  # the rest is "Everyone else"


def _variant(*, symptoms: bool, therapists: bool) -> str:
    return f"{int(symptoms)}{int(therapists)}"


def row_digests(patients: Sequence[Patient], *, code_version: str) -> dict[int, str | None]:
    """Each patient's digest of the state their caseload row shows (module docstring): a few small
    queries whatever the caseload's size (the open episodes with their counters; per clinic, its
    finished episodes and latest estimate). None where the open episode has no revision counter
    (a database without the triggers): that row is computed on every read."""
    revisions: dict[int, tuple[int, int]] = {}
    uncounted: set[int] = set()  # open episodes without a counter
    for patient_id, episode_id, revision in Episode.objects.filter(
        patient__in=[p.pk for p in patients], ended_on=None
    ).values_list("patient_id", "pk", "revision_counter__revision"):
        if revision is None:
            uncounted.add(patient_id)
        revisions[patient_id] = (episode_id, revision)
    clinics = {}
    by_clinic = {p.clinic_id: p.clinic for p in patients}
    for clinic_id in by_clinic:
        finished = Episode.objects.filter(patient__clinic_id=clinic_id).exclude(ended_on=None)
        estimate = clinic_estimate_latest(clinic=by_clinic[clinic_id])
        # An episode whose snapshot is behind its answers is analysed on the read, with the
        # clinic's present estimate and sensitivity.
        clinics[clinic_id] = [
            *sorted(finished.aggregate(n=Count("pk"), last=Max("ended_on")).items()),
            estimate.pk if estimate else None,
            by_clinic[clinic_id].sensitivity,
        ]
    language = get_language()  # dates and words are rendered in the reader's language
    out: dict[int, str | None] = {}
    for patient in patients:
        if patient.pk in uncounted:
            out[patient.pk] = None
            continue
        clinic: Clinic = patient.clinic
        state = (
            code_version,
            language,
            patient.label,
            str(patient.code),
            patient.therapist_id,
            patient.therapist.get_full_name() if patient.therapist else "",
            revisions.get(patient.pk),
            clinics[patient.clinic_id],
            list(clinic.outcome_measures),
        )
        out[patient.pk] = hashlib.sha256(repr(state).encode()).hexdigest()
    return out


def caseload_fragments(
    *, patients_query: QuerySet[Patient], therapists: bool, code_version: str
) -> tuple[list[RowFragment], bool]:
    """The caseload's patients, their rows in order (most in need of attention first) and whether
    the page shows the symptoms column; each row from its cache entry when its state has not
    changed."""
    patients = list(patients_query)
    digests = row_digests(patients, code_version=code_version)
    language = get_language()
    entries: dict[str, dict[str, Any]] = cache.get_many([row_cache_key(p.pk, language) for p in patients])
    found: dict[int, dict[str, Any]] = {}
    for patient in patients:
        entry = entries.get(row_cache_key(patient.pk, language))
        if (
            digests[patient.pk] is not None
            and isinstance(entry, dict)
            and entry.get("digest") == digests[patient.pk]
        ):
            found[patient.pk] = entry
    missing = [p for p in patients if p.pk not in found]
    computed = {}
    if missing:
        for row in caseload_rows(patients=missing):
            alert = row.outcomes.safety[0] if row.outcomes.safety else None
            computed[row.patient.pk] = row
            found[row.patient.pk] = {
                "digest": digests[row.patient.pk],
                "priority": row.priority,
                "last": row.last_session_date,
                "symptoms": bool(row.outcomes.courses),
                "safety": {
                    "answer_label": alert.answer_label,
                    "session": alert.session.number,
                    "raised_at": alert.raised_at,
                }
                if alert
                else None,
                "html": {},
            }
    symptoms = any(entry["symptoms"] for entry in found.values())
    variant = _variant(symptoms=symptoms, therapists=therapists)
    # Cached, but rendered for the page's other layout (the symptoms column came or went, or an
    # admin's view names the therapist): computed once more, together.
    again = [p for p in patients if variant not in found[p.pk]["html"] and p.pk not in computed]
    if again:
        computed.update({row.patient.pk: row for row in caseload_rows(patients=again)})
    changed = {}
    for patient in patients:
        entry = found[patient.pk]
        if variant in entry["html"]:
            continue
        # A row without a digest (no revision counter) is rendered on every read, never kept.
        entry["html"][variant] = render_to_string(
            "care/_caseload_row.html",
            {"row": computed[patient.pk], "show_symptoms": symptoms, "with_therapist": therapists},
        ).strip()
        if entry["digest"] is not None:
            changed[row_cache_key(patient.pk, language)] = entry
    if changed:
        cache.set_many(changed, ROW_CACHE_SECONDS)
        # An erasure that committed while these rows were rendered has already forgotten its
        # patient's entry: one just written for a patient who is gone must not stay.
        written = {p.pk for p in patients if row_cache_key(p.pk, language) in changed}
        if gone := written - set(Patient.objects.filter(pk__in=written).values_list("pk", flat=True)):
            rows_cache_forget(sorted(gone))
    fragments = [
        RowFragment(
            patient=patient,
            priority=found[patient.pk]["priority"],
            last_session_date=found[patient.pk]["last"],
            safety=found[patient.pk]["safety"],
            symptoms=found[patient.pk]["symptoms"],
            html=mark_safe(found[patient.pk]["html"][variant]),  # noqa: S308 (our template's output)
        )
        for patient in patients
    ]
    fragments.sort(
        key=lambda r: (r.priority, -(r.last_session_date or date.min).toordinal(), r.patient.label)
    )
    return fragments, symptoms


def rows_html(rows: Sequence[RowFragment]) -> SafeString:
    """The rows' cached HTML, one after the other (a table's body)."""
    return mark_safe("\n".join(row.html for row in rows))  # noqa: S308 (each row is our template's output)
