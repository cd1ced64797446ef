"""Symptom measures beside the alliance: PHQ-9 and GAD-7 as data, on the patient's link (with
the alliance or before the session), by staff from paper, their scores, and the safety alert."""

from __future__ import annotations

from datetime import date

import pytest
from auditlog.models import LogEntry
from django.core import mail

from clinics.errors import ApplicationError
from clinics.models import Session
from monitoring.analytics import MEASURES
from monitoring.collection.invitations import invitation_create, invitation_for_token, invitation_instruments
from monitoring.collection.responses import response_enter, submission_create
from monitoring.collection.safety import safety_follow_up
from monitoring.instruments.measures import measure_spec, outcome_instruments, outcome_scores
from monitoring.models import Answer, Invitation, Response, SafetyAlert

pytestmark = pytest.mark.django_db
ALLIANCE = {n: 4 for n in range(1, 13)}
PHQ9 = {1: 2, 2: 2, 3: 1, 4: 2, 5: 1, 6: 1, 7: 1, 8: 0, 9: 0}  # 10: moderate, at the cut-off
GAD7 = {n: 1 for n in range(1, 8)}  # 7: mild, one below the cut-off


@pytest.fixture
def measuring(clinic_a):
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save()
    return clinic_a


def test_the_bundled_measures_are_the_analytics_measures():
    loaded = outcome_instruments()
    assert list(loaded) == ["phq9", "gad7"]
    for code, instrument in loaded.items():
        assert measure_spec(instrument) == MEASURES[code]
    phq9 = loaded["phq9"]
    assert [i.code for i in phq9.items.all()][-1] == "44260-8"
    assert phq9.translation("en").scale_labels == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]
    assert (
        "Pfizer" in phq9.translation("en").source and phq9.translations.count() == 1
    )  # no unverified translation


def test_one_link_after_the_session_asks_alliance_then_symptoms(measuring, session, alice):
    invitation, token = invitation_create(session=session, created_by=alice)
    assert invitation.part == "after" and invitation.measures == ["phq9", "gad7"]
    assert [i.measure for i in invitation_instruments(invitation)] == ["alliance", "phq9", "gad7"]
    submission_create(
        invitation=invitation_for_token(token=token), answers=ALLIANCE, measures={"phq9": PHQ9, "gad7": GAD7}
    )
    assert sorted(Response.objects.values_list("measure", flat=True)) == ["alliance", "gad7", "phq9"]
    assert Answer.objects.count() == 12 + 9 + 7
    scores = outcome_scores(episode_ids=[session.episode_id])
    assert scores.to_dict("records") == [
        {"patient": session.episode_id, "session": 1, "measure": "gad7", "score": 7.0},
        {"patient": session.episode_id, "session": 1, "measure": "phq9", "score": 10.0},
    ]


def test_a_missing_measure_stores_nothing_and_keeps_the_link(measuring, session, alice):
    invitation, token = invitation_create(session=session, created_by=alice)
    with pytest.raises(ApplicationError) as error:
        submission_create(
            invitation=invitation_for_token(token=token),
            answers=ALLIANCE,
            measures={"phq9": {**PHQ9, 9: 4}, "gad7": {1: 1}},
        )
    assert "PHQ-9: Item 9: 4 is outside the scale (0 to 3)." in error.value.problems
    assert "GAD-7: No answer for item 2, 3, 4, 5, 6, 7." in error.value.problems
    assert Response.objects.count() == 0 and SafetyAlert.objects.count() == 0
    invitation.refresh_from_db()
    assert invitation.used_at is None


def test_a_second_submission_stores_nothing_twice(measuring, session, alice):
    _, token = invitation_create(session=session, created_by=alice)
    submission_create(
        invitation=invitation_for_token(token=token), answers=ALLIANCE, measures={"phq9": PHQ9, "gad7": GAD7}
    )
    with pytest.raises(ApplicationError) as error:
        submission_create(
            invitation=invitation_for_token(token=token),
            answers=ALLIANCE,
            measures={"phq9": PHQ9, "gad7": GAD7},
        )
    assert error.value.code == "used"
    assert Response.objects.count() == 3


def test_before_the_session_the_symptoms_have_a_link_of_their_own(measuring, episode, alice):
    measuring.outcome_timing = "before_session"
    measuring.save()
    upcoming = Session.objects.create(episode=episode, number=2, date=date(2026, 9, 8))
    before, token = invitation_create(session=upcoming, created_by=alice, part="before")
    assert [i.measure for i in invitation_instruments(before)] == ["phq9", "gad7"]
    with pytest.raises(ApplicationError, match="does not ask alliance"):
        submission_create(invitation=before, answers=ALLIANCE, measures={"phq9": PHQ9, "gad7": GAD7})
    submission_create(invitation=invitation_for_token(token=token), measures={"phq9": PHQ9, "gad7": GAD7})
    upcoming.status = Session.Status.HELD
    upcoming.save()
    after, _ = invitation_create(session=upcoming, created_by=alice)
    assert after.measures == [] and [i.measure for i in invitation_instruments(after)] == ["alliance"]
    with pytest.raises(ApplicationError, match="already in"):
        invitation_create(session=upcoming, created_by=alice, part="before")


def test_a_clinic_without_measures_has_no_symptom_link(clinic_a, session, alice):
    with pytest.raises(ApplicationError, match="asks no symptom measures"):
        invitation_create(session=session, created_by=alice, part="before")
    invitation, _ = invitation_create(session=session, created_by=alice)
    assert invitation.measures == []


def test_staff_enter_a_paper_phq9_and_the_link_that_asks_it_closes(measuring, session, alice):
    invitation, _ = invitation_create(session=session, created_by=alice)
    response_enter(session=session, rater="patient", answers=PHQ9, user=alice, measure="phq9")
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert Response.objects.get().source == "staff"
    with pytest.raises(ApplicationError, match="already been received"):
        response_enter(session=session, rater="patient", answers=PHQ9, user=alice, measure="phq9")
    with pytest.raises(ApplicationError, match="no patient-rated measure 'core10'"):
        response_enter(session=session, rater="patient", answers=PHQ9, user=alice, measure="core10")


def test_a_prorated_total_with_one_item_missing_and_two_missing_refused(measuring, episode, alice):
    from monitoring.collection.responses import ResponseEntry, responses_store

    sessions = [
        Session.objects.create(episode=episode, number=n, date=date(2026, 9, n), status="held")
        for n in (1, 2)
    ]
    phq9 = outcome_instruments(["phq9"])["phq9"]
    responses_store(
        instrument=phq9,
        entries=[ResponseEntry(session=sessions[0], answers={n: 2 for n in range(1, 9)}, source="import")],
        require_all=False,
    )
    assert outcome_scores(episode_ids=[episode.pk])["score"].tolist() == [18.0]  # 16 / 8 * 9
    with pytest.raises(ApplicationError) as error:
        responses_store(
            instrument=phq9,
            entries=[
                ResponseEntry(session=sessions[1], answers={n: 2 for n in range(1, 8)}, source="import")
            ],
            require_all=False,
        )
    assert error.value.problems == [
        "Only 7 of 9 items are answered; at least 8 are needed for a total score."
    ]


# --- Safety -----------------------------------------------------------------------------------


def test_a_risk_answer_raises_an_alert_and_mails_the_therapist_at_once(
    measuring, session, alice, django_capture_on_commit_callbacks
):
    _, token = invitation_create(session=session, created_by=alice)
    with django_capture_on_commit_callbacks(execute=True):
        submission_create(
            invitation=invitation_for_token(token=token),
            answers=ALLIANCE,
            measures={"phq9": {**PHQ9, 9: 1}, "gad7": GAD7},
        )
    alert = SafetyAlert.objects.get()
    assert (alert.item, alert.value, alert.answer_label) == (9, 1, "Several days")
    assert alert.session == session and alert.followed_up_at is None and alert.notified_at is not None
    [message] = mail.outbox
    assert message.to == ["alice@a.test"] and "Safety alert" in message.subject
    assert session.episode.patient.label not in message.body  # names no one
    assert f"/patients/{session.episode.patient.code}/" in message.body


def test_no_alert_without_a_risk_answer(measuring, session, alice, django_capture_on_commit_callbacks):
    _, token = invitation_create(session=session, created_by=alice)
    with django_capture_on_commit_callbacks(execute=True):
        submission_create(
            invitation=invitation_for_token(token=token),
            answers=ALLIANCE,
            measures={"phq9": PHQ9, "gad7": GAD7},
        )
    assert SafetyAlert.objects.count() == 0 and mail.outbox == []


def test_a_paper_form_with_a_risk_answer_raises_an_alert_too(
    measuring, session, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response_enter(session=session, rater="patient", answers={**PHQ9, 9: 3}, user=alice, measure="phq9")
    assert SafetyAlert.objects.get().answer_label == "Nearly every day"
    assert len(mail.outbox) == 1


def test_the_admins_are_mailed_when_the_therapist_has_left(
    measuring, session, alice, dana, django_capture_on_commit_callbacks
):
    alice.memberships.update(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response_enter(session=session, rater="patient", answers={**PHQ9, 9: 2}, user=dana, measure="phq9")
    assert mail.outbox[0].to == ["dana@a.test"]


def test_recording_the_follow_up_is_checked_and_audited(measuring, session, alice):
    response_enter(session=session, rater="patient", answers={**PHQ9, 9: 2}, user=alice, measure="phq9")
    alert = SafetyAlert.objects.get()
    with pytest.raises(ApplicationError, match="Choose what was done"):
        safety_follow_up(alert=alert, user=alice, follow_up="", note="Called")
    with pytest.raises(ApplicationError, match="short note"):
        safety_follow_up(alert=alert, user=alice, follow_up="contacted", note="  ")
    assert SafetyAlert.objects.open().count() == 1
    safety_follow_up(alert=alert, user=alice, follow_up="contacted", note="Phoned; safety plan agreed.")
    alert.refresh_from_db()
    assert alert.followed_up_by == alice and alert.follow_up == "contacted"
    assert SafetyAlert.objects.open().count() == 0
    entry = LogEntry.objects.get_for_object(alert).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor is None or entry.actor == alice
    assert "Phoned" not in str(entry.changes)  # the note itself is withheld from the trail
    with pytest.raises(ApplicationError, match="already been recorded"):
        safety_follow_up(alert=alert, user=alice, follow_up="seen", note="again")


def test_invitations_only_ask_what_was_chosen_when_they_were_made(measuring, session, alice):
    invitation, _ = invitation_create(session=session, created_by=alice)
    measuring.outcome_measures = []
    measuring.save()
    assert Invitation.objects.get(pk=invitation.pk).measures == ["phq9", "gad7"]
