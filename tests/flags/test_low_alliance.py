"""The absolute signal (a total below the clinic's cut-off for several sessions in a row), undoing
an acknowledgement, and the flag export's threshold."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client

from monitoring.analytics.absolute import detect_low_alliance
from monitoring.care.selectors import caseload_for_user
from monitoring.exports import EXPORTS, ExportFilters
from monitoring.flags.services import episode_flags_refresh, flag_acknowledge
from monitoring.models import Flag, Notification
from tests.auth import sign_in
from tests.flags.test_flags import add_session

pytestmark = pytest.mark.django_db

LOW = {n: 2 for n in range(1, 13)}  # total 2.0
OK = {n: 4 for n in range(1, 13)}  # total 4.0


def session_run(episode, instrument, totals: list[dict[int, int]], start: int = 1) -> None:
    for offset, answers in enumerate(totals):
        add_session(episode, instrument, start + offset, answers)
        episode_flags_refresh(episode_id=episode.pk)


def low_flags(episode) -> list[int]:
    return sorted(
        Flag.objects.filter(episode=episode, kind="low_alliance").values_list("session__number", flat=True)
    )


def test_a_run_below_the_cut_off_is_one_event_at_its_third_session():
    import pandas as pd

    sessions = pd.DataFrame(
        {
            "patient": 1,
            "session": range(1, 9),
            "scale": "total",
            "score": [2.0, 2.4, 2.6, 2.0, 2.1, 2.2, 2.3, 2.9],
        }
    )
    events = detect_low_alliance(sessions, cutoff=2.5, run=3)
    assert events[["session", "from_session"]].values.tolist() == [[6, 4]]
    assert events["threshold"].tolist() == [2.5] and events["alarm"].tolist() == [True]
    # With a run of 2, sessions 1-2 are a run of their own, and 4-7 one more (raised at 5).
    assert detect_low_alliance(sessions, cutoff=2.5, run=2)["session"].tolist() == [2, 5]


def test_a_persistently_low_alliance_keeps_the_patient_in_needs_attention(episode, instrument, alice):
    session_run(episode, instrument, [LOW, LOW, LOW])
    assert low_flags(episode) == [3]
    flag = Flag.objects.get(episode=episode, kind="low_alliance")
    assert flag.alarm and flag.threshold == 2.5 and flag.detail["from_session"] == 1
    assert "below the clinic's cut-off of 2.5 for 3 sessions in a row" in flag.explanation
    assert Notification.objects.filter(flag=flag, user=alice).exists()
    (row,) = caseload_for_user(user=alice)
    assert row.priority < 9
    assert row.reason.startswith("Alliance has stayed low")
    assert [b.kind for b in row.badges] == ["low_alliance"]


def test_it_stays_after_its_run_is_long_past_until_acknowledged(episode, instrument, alice):
    session_run(episode, instrument, [LOW] * 12)
    assert low_flags(episode) == [3], "one event per run, not one per session"
    (row,) = caseload_for_user(user=alice)
    assert "low_alliance" in [b.kind for b in row.badges], "it outlasts the attention window"
    flag_acknowledge(
        flag=Flag.objects.get(episode=episode, kind="low_alliance"), user=alice, acknowledgement="discussed"
    )
    (row,) = caseload_for_user(user=alice)
    assert "low_alliance" not in [b.kind for b in row.badges]


def test_it_is_raised_again_only_after_a_session_above_the_cut_off(episode, instrument, alice):
    session_run(episode, instrument, [LOW, LOW, LOW, LOW])
    flag_acknowledge(
        flag=Flag.objects.get(episode=episode, kind="low_alliance"), user=alice, acknowledgement="discussed"
    )
    session_run(episode, instrument, [LOW, LOW], start=5)
    assert low_flags(episode) == [3]
    session_run(episode, instrument, [OK, LOW, LOW, LOW], start=7)
    assert low_flags(episode) == [3, 10]


def test_the_clinic_sets_the_cut_off_and_the_run_within_bounds(
    client: Client, clinic_a, dana, episode, instrument
):
    sign_in(client, dana)
    base = {
        "name": clinic_a.name,
        "instrument_code": "bordin-alliance",
        "default_language": "en",
        "link_expiry_hours": 72,
        "reminder_delay_hours": 24,
        "sensitivity": "standard",
        "retention_years": 10,
        "idle_timeout_minutes": 30,
    }
    assert (
        client.post(f"/clinic/{clinic_a.slug}/settings/", {**base, "low_alliance_cutoff": 4.5}).status_code
        == 400
    )
    assert (
        client.post(f"/clinic/{clinic_a.slug}/settings/", {**base, "low_alliance_sessions": 1}).status_code
        == 400
    )
    ok = {**base, "low_alliance_cutoff": 3.5, "low_alliance_sessions": 2}
    assert client.post(f"/clinic/{clinic_a.slug}/settings/", ok).status_code == 302
    clinic_a.refresh_from_db()
    assert (clinic_a.low_alliance_cutoff, clinic_a.low_alliance_sessions) == (3.5, 2)
    session_run(episode, instrument, [{n: 3 for n in range(1, 13)}] * 2)
    assert low_flags(episode) == [2]


def test_undoing_an_acknowledgement_reopens_the_event_and_is_audited(
    client: Client, episode, instrument, alice
):
    session_run(episode, instrument, [LOW, LOW, LOW])
    flag = Flag.objects.get(episode=episode, kind="low_alliance")
    flag_acknowledge(flag=flag, user=alice, acknowledgement="not_relevant", note="known")
    sign_in(client, alice)
    page = client.get(f"/patients/{episode.patient.code}/").content.decode()
    assert "Undo acknowledgement" in page
    response = client.post(f"/flags/{flag.code}/unacknowledge/")
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.acknowledgement, flag.acknowledged_note, flag.acknowledged_by) == ("", "", None)
    (row,) = caseload_for_user(user=alice)
    assert "low_alliance" in [b.kind for b in row.badges]
    undo = LogEntry.objects.get_for_object(flag).filter(action=LogEntry.Action.UPDATE).first()
    assert undo is not None and undo.actor == alice and "acknowledgement" in undo.changes_dict
    assert undo.additional_data["patient"] == str(episode.patient.code)


def test_another_therapist_cannot_undo(client: Client, episode, instrument, alice, bob):
    session_run(episode, instrument, [LOW, LOW, LOW])
    flag = Flag.objects.get(episode=episode, kind="low_alliance")
    flag_acknowledge(flag=flag, user=alice, acknowledgement="discussed")
    sign_in(client, bob)
    assert client.post(f"/flags/{flag.code}/unacknowledge/").status_code == 404
    flag.refresh_from_db()
    assert flag.acknowledgement == "discussed"


def test_the_flag_export_threshold_is_the_score_compared_with(clinic_a, episode, instrument):
    for number in range(1, 5):
        add_session(episode, instrument, number, OK if number % 2 else {**OK, 3: 5})
    add_session(episode, instrument, 5, {n: 3 for n in range(1, 13)})
    episode_flags_refresh(episode_id=episode.pk)
    frame = EXPORTS["flags"].frame(clinic=clinic_a, filters=ExportFilters())
    rupture = frame[(frame["kind"] == "rupture") & (frame["scale"] == "total")].iloc[0]
    stored = Flag.objects.get(episode=episode, kind="rupture", scale="total")
    assert rupture["threshold"] == pytest.approx(stored.detail["baseline"] - stored.threshold, abs=1e-3)
    assert rupture["compared"] == "score at or below"
    assert rupture["score"] <= rupture["threshold"] < rupture["baseline"]
