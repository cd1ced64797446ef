"""One meaning of "usual level": the prospective baseline the flags use, on the caseload row and
the patient page; the mean of all sessions is the long-run level and is named so."""

from __future__ import annotations

import pytest
from django.test import Client

from monitoring.care.selectors import caseload_for_user
from tests.auth import sign_in
from tests.flags.test_flags import add_session

pytestmark = pytest.mark.django_db

FOUR = {n: 4 for n in range(1, 13)}
TWO = {n: 2 for n in range(1, 13)}


def test_the_caseload_row_number_and_verdict_come_from_the_same_baseline(dropped, alice):
    (row,) = caseload_for_user(user=alice)
    # The baseline before session 5 (4.04), not the mean of all five sessions (3.63).
    assert row.level == pytest.approx(4.04, abs=0.01)
    assert row.deviation == "well below usual"
    assert row.latest_total == 2.0 and not row.provisional


def test_a_single_session_has_no_usual_level_and_no_verdict(episode, instrument, alice):
    add_session(episode, instrument, 1, FOUR)
    (row,) = caseload_for_user(user=alice)
    assert row.level is None and row.deviation == ""


def test_the_patient_page_headline_says_usual_and_long_run_apart(client: Client, dropped, alice):
    sign_in(client, alice)
    page = client.get(f"/patients/{dropped.patient.code}/").content.decode()
    assert "Usual level (total)" in page
    assert '<p class="figure-value">4.0</p>' in page
    assert "what session 5 and its flags were compared with" in page
    assert "Long-run level 3.6: the mean of all 5 sessions" in page
    # The trajectory chart's line is the long-run level, named so.
    assert "Long-run level 3.6" in page and "Usual level 3.6" not in page


def test_column_labels_are_unambiguous(client: Client, dropped, alice, instrument):
    sign_in(client, alice)
    page = client.get(f"/patients/{dropped.patient.code}/").content.decode()
    assert '<abbr title="task">T</abbr>' in page
    assert 'title="Therapist rated too">T<' not in page
