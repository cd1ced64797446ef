"""Finding 7 of issue 14: concurrent submissions failed their analysis.

``scores_for_episodes`` read responses and answers in two queries; an answer of a response
committed between them had no instrument (NaN, then ``ValueError`` in the analysis task), so the
episode kept flags older than its answers. The scores must come from one consistent snapshot.

The race is made certain rather than hoped for: just before the reader sends its query of
answers, another thread (its own connection) commits a whole new response.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection, connections

from clinics.models import Session
from monitoring.collection.responses import response_create
from monitoring.flags.services import episodes_flags_refresh
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import EpisodeAnalysis, Response

ANSWERS = {n: 3 + n % 3 for n in range(1, 13)}


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("threads sharing one SQLite test database serialise anyway; this proves PostgreSQL")


def _answered(episode, numbers, instrument) -> None:
    for number in numbers:
        session = Session.objects.create(
            episode=episode, number=number, date=date(2026, 9, number), status=Session.Status.HELD
        )
        response_create(session=session, instrument=instrument, answers=ANSWERS, source="link")


class CommitBeforeAnswersAreRead:
    """A database execute wrapper: before the first query that reads answers, another thread
    stores a whole response of ``session`` (and its transaction commits)."""

    def __init__(self, session: Session, instrument) -> None:
        self.session, self.instrument, self.fired = session, instrument, False

    def __call__(self, execute, sql, params, many, context):
        if not self.fired and '"monitoring_answer"' in sql:
            self.fired = True
            writer = threading.Thread(target=self.write)
            writer.start()
            writer.join()
        return execute(sql, params, many, context)

    def write(self) -> None:
        try:
            response_create(session=self.session, instrument=self.instrument, answers=ANSWERS, source="link")
        finally:
            connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_scores_do_not_tear_when_a_response_commits_between_reads(episode, instrument):
    _postgres_only()
    _answered(episode, range(1, 6), instrument)
    sixth = Session.objects.create(episode=episode, number=6, date=date(2026, 9, 6), status="held")
    hook = CommitBeforeAnswersAreRead(sixth, instrument)

    with connection.execute_wrapper(hook):
        scores = scores_for_episodes(episode_ids=[episode.pk])

    assert hook.fired
    assert Response.objects.filter(session=sixth).exists()  # the other transaction did commit
    # One snapshot: either before the sixth response (5 sessions) or after it (6), never a mix.
    assert list(scores["session"]) in ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6])
    assert not scores[["goal", "task", "bond", "total"]].isna().any().any()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_analysis_survives_a_concurrent_submission_and_catches_up(episode, instrument):
    _postgres_only()
    _answered(episode, range(1, 9), instrument)
    ninth = Session.objects.create(episode=episode, number=9, date=date(2026, 9, 9), status="held")
    hook = CommitBeforeAnswersAreRead(ninth, instrument)

    with connection.execute_wrapper(hook):
        episodes_flags_refresh(episode_ids=[episode.pk])  # raised ValueError (NaN) before the fix

    assert hook.fired
    # The ninth response's own analysis (scheduled on its commit) and this one together leave the
    # stored analysis as new as the last answer.
    state = EpisodeAnalysis.objects.get(episode=episode)
    assert state.flagged_through == 9
    assert state.analysed_sessions == list(range(1, 10))
