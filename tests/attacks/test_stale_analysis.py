"""Issue 14, items 6 and 7: an episode's stored analysis must catch up with its answers.

A task queue that cannot take the analysis (Redis down with the RQ backend) must not break the
patient's submission; the sweep (``manage.py analyse_stale``) finds every episode whose answers
are newer than its stored analysis and analyses it, idempotently.
"""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command

from clinics.models import Session
from monitoring import tasks
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_create
from monitoring.flags.selectors import episodes_stale
from monitoring.flags.services import episodes_stale_analyse
from monitoring.models import EpisodeAnalysis, Flag, Response

# Transactions commit for real: the analysis is scheduled on commit.
pytestmark = pytest.mark.django_db(transaction=True)
FULL = {f"item_{n}": "4" for n in range(1, 13)}
ANSWERS = {n: 3 + n % 3 for n in range(1, 13)}


class QueueDown:
    """The analysis task as the RQ backend offers it with Redis stopped."""

    def enqueue(self, *args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def queue_down(monkeypatch):
    monkeypatch.setattr(tasks, "episodes_analyse", QueueDown())


def _answered(episode, instrument, numbers) -> None:
    for number in numbers:
        session = Session.objects.create(
            episode=episode, number=number, date=date(2026, 9, number), status=Session.Status.HELD
        )
        response_create(session=session, instrument=instrument, answers=ANSWERS, source="link")


def test_a_queue_outage_still_thanks_the_patient_and_the_sweep_catches_up(
    client, session, alice, episode, queue_down, caplog
):
    _, token = invitation_create(session=session, created_by=alice)
    posted = client.post(f"/f/{token}/", FULL)
    assert posted.status_code == 302
    assert "Your answers have been received" in client.get(posted["Location"]).content.decode()
    assert Response.objects.filter(session=session).count() == 1
    assert "manage.py analyse_stale will analyse them" in caplog.text
    assert episodes_stale() == [episode.pk]

    out = StringIO()
    call_command("analyse_stale", stdout=out)
    assert "1 stale episode(s) analysed" in out.getvalue() and "0 stale now" in out.getvalue()
    assert episodes_stale() == []
    assert EpisodeAnalysis.objects.get(episode=episode).analysed_sessions == [1]

    again = StringIO()
    call_command("analyse_stale", stdout=again)  # idempotent: nothing left to do
    assert again.getvalue().startswith("0 stale episode(s) analysed, 0 new flag(s)")


def test_stale_means_any_answered_session_missing_from_the_stored_analysis(episode, instrument, monkeypatch):
    _answered(episode, instrument, [1, 2, 3, 5, 6, 7, 8])  # analysed on commit (immediate backend)
    assert episodes_stale() == []
    flags = Flag.objects.count()

    # A late paper form for session 4, below the watermark (8), while the queue is down: the old
    # bench check (flagged_through equals the last answered session) called this episode current.
    monkeypatch.setattr(tasks, "episodes_analyse", QueueDown())
    _answered(episode, instrument, [4])
    assert EpisodeAnalysis.objects.get(episode=episode).flagged_through == 8
    assert episodes_stale() == [episode.pk]
    with pytest.raises(CommandError):
        call_command("analyse_stale", "--check", stdout=StringIO())

    sweep = episodes_stale_analyse()
    assert (sweep.found, sweep.failed, sweep.left) == (1, [], 0)
    assert EpisodeAnalysis.objects.get(episode=episode).analysed_sessions == list(range(1, 9))
    assert Flag.objects.count() >= flags  # stored flags are never removed
    call_command("analyse_stale", "--check", stdout=StringIO())


def test_an_episode_that_cannot_be_analysed_is_reported_and_the_others_still_catch_up(
    clinic_a, alice, episode, instrument, queue_down, monkeypatch
):
    from clinics.models import Episode, Patient
    from monitoring.flags import services

    other = Episode.objects.create(
        patient=Patient.objects.create(clinic=clinic_a, label="Q.Q.", therapist=alice),
        therapist=alice,
        started_on=date(2026, 9, 1),
    )
    _answered(episode, instrument, [1, 2])
    _answered(other, instrument, [1, 2])
    assert episodes_stale() == sorted([episode.pk, other.pk])
    real = services.episodes_flags_refresh

    def broken_for_one(*, episode_ids):
        if episode.pk in episode_ids:
            raise ValueError("cannot convert float NaN to integer")
        return real(episode_ids=episode_ids)

    monkeypatch.setattr(services, "episodes_flags_refresh", broken_for_one)
    sweep = episodes_stale_analyse()
    assert (sweep.found, sweep.failed, sweep.left) == (2, [episode.pk], 1)
    assert episodes_stale() == [episode.pk]
