"""The analysis snapshot: written with the flags whenever answers arrive, read by the pages
without re-running the analysis, and always equal to a fresh analysis of the answers."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings

from clinics.models import Clinic, Session
from clinics.services import clinic_settings_update
from monitoring import tasks
from monitoring.analytics.simulate import simulate_cohort
from monitoring.care.selectors import caseload_for_user
from monitoring.clinic_admin.services import patient_erase
from monitoring.collection.responses import response_create
from monitoring.flags import selectors as flag_selectors
from monitoring.flags.selectors import snapshots_for_episodes
from monitoring.flags.services import episode_flags_refresh, snapshots_check
from monitoring.flags.snapshots import SNAPSHOT_FORMAT, EpisodeFrames
from monitoring.models import EpisodeAnalysis
from tests.auth import sign_in
from tests.flags.test_flags import add_session
from tests.writes import WRITES, applied

pytestmark = pytest.mark.django_db

FOUR = {n: 4 for n in range(1, 13)}
TWO = {n: 2 for n in range(1, 13)}


def test_the_snapshot_is_written_with_the_flags(dropped):
    state = EpisodeAnalysis.objects.get(episode=dropped)
    assert state.version.startswith(f"{SNAPSHOT_FORMAT}:")
    assert state.analysed_at is not None
    assert state.summary["totals"] == pytest.approx([4.0, 4.08, 4.0, 4.08, 2.0], abs=0.01)
    assert state.summary["level"] == pytest.approx(4.04, abs=0.01)
    assert state.summary["provisional"] is False and state.summary["z"] < -2
    frames = EpisodeFrames.load(state.frames)
    assert sorted(frames.sessions["session"].unique()) == [1, 2, 3, 4, 5]
    events = frames.events[["kind", "scale", "session"]].astype({"kind": str, "scale": str})
    assert ("rupture", "total", 5) in set(events.itertuples(index=False, name=None))
    assert snapshots_check().ok


def test_pages_read_the_snapshot_and_never_run_the_analysis(client: Client, dropped, alice, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a page re-ran the analysis")

    monkeypatch.setattr(flag_selectors, "analyse", refuse)
    sign_in(client, alice)
    caseload = client.get("/").content.decode()
    assert "well below usual" in caseload.lower()
    page = client.get(f"/patients/{dropped.patient.code}/")
    assert page.status_code == 200
    assert '<p class="figure-value">4.0</p>' in page.content.decode()
    assert 'data-chart="chart-trajectory"' in page.content.decode()


def test_a_snapshot_older_than_the_answers_is_not_shown(dropped, instrument, alice):
    """Answers whose analysis has not run yet (the task is queued, or failed): the page analyses
    the episode itself rather than show less than the answers."""
    add_session(dropped, instrument, 6, FOUR)  # on_commit never runs here: no new snapshot
    (row,) = caseload_for_user(user=alice)
    assert row.latest_total == 4.0 and len(row.totals) == 6
    snapshot = snapshots_for_episodes(episodes=[dropped])[dropped.pk]
    assert snapshot.live is not None and snapshot.version == ""
    found = snapshots_check()
    assert found.missing == [dropped.pk] and not found.ok
    with pytest.raises(CommandError, match="snapshots_check --repair"):
        call_command("snapshots_check")
    call_command("snapshots_check", "--repair")
    assert snapshots_check().ok


def test_charts_are_rendered_once_per_state(client: Client, dropped, alice, instrument, monkeypatch):
    from monitoring.care import views

    built = []
    real = views._patient_figures

    def counted(dashboard):
        built.append(dashboard)
        return real(dashboard)

    monkeypatch.setattr(views, "_patient_figures", counted)
    sign_in(client, alice)
    path = f"/patients/{dropped.patient.code}/"
    first = client.get(path).content
    assert client.get(path).content.count(b"chart-trajectory") == first.count(b"chart-trajectory")
    assert len(built) == 1
    # A new answer (and its analysis) is a new state: the charts are drawn again, with it.
    session = Session.objects.create(episode=dropped, number=6, date=date(2026, 10, 20), status="held")
    response_create(session=session, instrument=instrument, answers=FOUR, source="link")
    episode_flags_refresh(episode_id=dropped.pk)
    client.get(path)
    assert len(built) == 2
    # Moving a session's date changes what the charts show, without a new analysis.
    Session.objects.filter(pk=session.pk).update(date=date(2026, 10, 21))
    client.get(path)
    assert len(built) == 3


def test_a_new_estimate_re_snapshots_the_clinic_in_the_background(dropped, clinic_a):
    before = EpisodeAnalysis.objects.get(episode=dropped).version
    clinic_settings_update(clinic=clinic_a, sensitivity=Clinic.Sensitivity.SENSITIVE)
    assert snapshots_check().outdated == [dropped.pk]
    # The page still shows the stored snapshot, marked as computed with earlier parameters.
    assert snapshots_for_episodes(episodes=[dropped])[dropped.pk].current is False
    tasks.clinic_estimate_refresh.enqueue(clinic_a.pk)
    after = EpisodeAnalysis.objects.get(episode=dropped).version
    assert after != before and after.endswith(":sensitive")
    found = snapshots_check()
    assert found.ok and not found.outdated


# --- Property: after any sequence of writes every snapshot equals a fresh analysis -------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=WRITES)
def test_snapshots_equal_a_fresh_analysis_after_any_sequence_of_writes(
    writes, clinic_a, alice, bob, dana, django_capture_on_commit_callbacks
):
    with transaction.atomic():
        for _ in applied(
            writes,
            clinic=clinic_a,
            alice=alice,
            bob=bob,
            dana=dana,
            capture=django_capture_on_commit_callbacks,
        ):
            pass
        found = snapshots_check()
        assert found.ok and not found.outdated, found
        transaction.set_rollback(True)


def test_the_stored_frames_read_back_exactly():
    """Every value and dtype survives the round trip through JSON (NaN and NA as null)."""
    import pandas as pd

    from monitoring.analytics import AnalysisConfig, analyse
    from monitoring.flags.snapshots import frames_by_episode

    scores = simulate_cohort(30, seed=1, sessions=(12, 12)).scores
    scores["patient"] = scores["patient"].str[1:].astype(int)
    analysis = analyse(scores, AnalysisConfig())
    assert len(analysis.events) > 50
    for frames in frames_by_episode(analysis).values():
        # Keys sorted, as PostgreSQL's jsonb gives them back (it keeps no key order).
        again = EpisodeFrames.load(json.loads(json.dumps(frames.dump(), sort_keys=True)))
        for name in ("sessions", "levels", "events", "patterns"):
            before, after = getattr(frames, name), getattr(again, name)
            pd.testing.assert_frame_equal(before, after, check_categorical=False)
            # Every dtype is kept, a categorical's categories and their order too (the scales in
            # their clinical order, which the exports sort by).
            assert [str(t) for t in before.dtypes] == [str(t) for t in after.dtypes]
            if isinstance(before["scale"].dtype, pd.CategoricalDtype):
                assert list(after["scale"].cat.categories) == list(before["scale"].cat.categories)
                assert after["scale"].cat.ordered


def test_exports_read_the_snapshots_and_a_past_period_is_analysed(dropped, clinic_a, monkeypatch):
    from monitoring.exports import queries
    from monitoring.exports.base import ExportFilters
    from monitoring.flags.snapshots import StoredAnalysis, frames_equal

    fresh = queries.analysis_for_export(clinic=clinic_a, filters=ExportFilters(end=date(2030, 1, 1)))
    assert fresh.analysis is not None and not isinstance(fresh.analysis, StoredAnalysis)

    def refuse(*args, **kwargs):
        raise AssertionError("an export re-ran the analysis")

    monkeypatch.setattr(queries, "analyse", refuse)
    stored = queries.analysis_for_export(clinic=clinic_a, filters=ExportFilters())
    assert isinstance(stored.analysis, StoredAnalysis)
    again = EpisodeFrames.of(fresh.analysis, dropped.pk)
    as_frames = EpisodeFrames(
        sessions=stored.analysis.sessions,
        levels=stored.analysis.levels,
        events=stored.analysis.events,
        patterns=stored.analysis.patterns,
        k=again.k,
        min_baseline=again.min_baseline,
    )
    assert frames_equal(as_frames, again) == []


def test_an_analysis_that_started_earlier_does_not_overwrite_a_newer_snapshot(dropped, instrument):
    """Two analyses of one episode can run at once (the patient's form and the therapist's
    rating): the one that read fewer answers, finishing last, leaves the newer snapshot."""
    from monitoring.flags.services import _snapshot_is_newest

    add_session(dropped, instrument, 6, FOUR)
    episode_flags_refresh(episode_id=dropped.pk)
    state = EpisodeAnalysis.objects.get(episode=dropped)
    estimate = state.episode.flags.first().estimate
    assert len(state.summary["totals"]) == 6
    assert not _snapshot_is_newest(state=state, sessions=[1, 2, 3, 4, 5], estimate=estimate)
    assert _snapshot_is_newest(state=state, sessions=[1, 2, 3, 4, 5, 6], estimate=estimate)


def test_a_snapshot_of_an_earlier_format_is_analysed_on_the_read_and_counts_as_stale(dropped):
    from monitoring.flags.selectors import episodes_stale

    EpisodeAnalysis.objects.filter(episode=dropped).update(version="1:1:standard", frames={"old": True})
    snapshot = snapshots_for_episodes(episodes=[dropped])[dropped.pk]
    assert snapshot.live is not None and len(snapshot.summary["totals"]) == 5
    assert episodes_stale() == [dropped.pk]


def test_erasing_the_patient_forgets_their_cached_charts(
    client: Client, dropped, alice, dana, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from monitoring.flags.snapshots import charts_cache_key

    sign_in(client, alice)
    client.get(f"/patients/{dropped.patient.code}/")
    assert cache.get(charts_cache_key(dropped.pk)) is not None
    with django_capture_on_commit_callbacks(execute=True):  # the caches are forgotten on commit
        patient_erase(patient=dropped.patient, by=dana, confirm=dropped.patient.label)
    assert cache.get(charts_cache_key(dropped.pk)) is None
