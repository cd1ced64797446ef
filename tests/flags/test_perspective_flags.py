"""Two perspectives stored as a flag (issue 16, item 8): a session the therapist rated well above
the patient, against this pair's usual difference, judged once when its second rating arrives."""

from __future__ import annotations

import pytest
from django.test import Client

from monitoring.care.selectors import caseload_for_user
from monitoring.collection.responses import response_enter
from monitoring.flags import wording
from monitoring.flags.services import episode_flags_refresh
from monitoring.models import EpisodeAnalysis, Flag, Notification
from tests.auth import sign_in
from tests.flags.test_flags import add_session

pytestmark = pytest.mark.django_db


def rated(value: float) -> dict[int, int]:
    """Twelve answers whose mean is about ``value`` (1-5)."""
    low, high = int(value), min(int(value) + 1, 5)
    n_high = round((value - low) * 12)
    return {n: (high if n <= n_high else low) for n in range(1, 13)}


@pytest.fixture
def pair(episode, instrument, alice, clinic_a):
    clinic_a.therapist_rating_enabled = True
    clinic_a.save()
    # The patient a little below the therapist throughout (a usual difference of about +0.25).
    for number, (patient, therapist) in enumerate([(3.75, 4.0), (3.5, 3.75), (3.75, 4.0), (3.5, 3.75)], 1):
        session = add_session(episode, instrument, number, rated(patient))
        response_enter(session=session, rater="therapist", answers=rated(therapist), user=alice)
    episode_flags_refresh(episode_id=episode.pk)
    return episode


def test_a_session_rated_far_higher_by_the_therapist_is_raised_once(pair, instrument, alice):
    assert not Flag.objects.filter(episode=pair, kind="perspective_gap").exists()
    session = add_session(pair, instrument, 5, rated(2.75))
    episode_flags_refresh(episode_id=pair.pk)  # the patient's form first: nothing to compare yet
    assert not Flag.objects.filter(episode=pair, kind="perspective_gap").exists()
    response_enter(session=session, rater="therapist", answers=rated(4.5), user=alice)
    episode_flags_refresh(episode_id=pair.pk)
    flag = Flag.objects.get(episode=pair, kind="perspective_gap")
    assert (flag.session.number, flag.scale, flag.alarm) == (5, "total", True)
    assert flag.detail["gap"] == pytest.approx(1.75) and flag.detail["usual_gap"] == pytest.approx(0.25)
    assert flag.magnitude == pytest.approx(1.5)
    assert flag.threshold is not None and 0.25 < flag.threshold < 1.75
    assert "The therapist rated session 5 at 4.5 and the patient at 2.8" in flag.explanation
    text = wording.rule_text(
        rule="gap_above_usual", scale="total", detail=flag.detail, threshold=flag.threshold
    )
    assert f"at or above the limit {flag.threshold:+.2f}" in text and "(+0.25, over 4 earlier" in text
    assert Notification.objects.filter(flag=flag, user=alice).exists()
    assert EpisodeAnalysis.objects.get(episode=pair).analysed_pairs == [1, 2, 3, 4, 5]
    # Judged once: a second analysis stores nothing new.
    assert episode_flags_refresh(episode_id=pair.pk) == []
    (row,) = caseload_for_user(user=alice)
    assert "Therapist rated higher" in row.reason


def test_a_usual_difference_is_not_raised(pair, instrument, alice):
    session = add_session(pair, instrument, 5, rated(3.5))
    response_enter(session=session, rater="therapist", answers=rated(3.75), user=alice)
    episode_flags_refresh(episode_id=pair.pk)
    assert not Flag.objects.filter(episode=pair, kind="perspective_gap").exists()


def test_the_patient_page_explains_it(client: Client, pair, instrument, alice):
    session = add_session(pair, instrument, 5, rated(2.75))
    response_enter(session=session, rater="therapist", answers=rated(4.5), user=alice)
    episode_flags_refresh(episode_id=pair.pk)
    sign_in(client, alice)
    page = client.get(f"/patients/{pair.patient.code}/").content.decode()
    assert "Therapist rated the session well above the patient" in page
    assert "what you might have missed" in page
    # The two raters' chart gives the difference per session and scale.
    assert "Task agreement: difference" in page and "Bond: difference" in page
