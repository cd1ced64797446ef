"""Symptom measures and safety alerts through the API (issue 15): entering a PHQ-9 or GAD-7 from
paper, reading one session's response of a measure (also as FHIR), the responses and sessions
lists, the symptom status on the analysis and the caseload, and the safety alerts with their
follow-up: who may see and record it, bad input, a second follow-up, and the audit trail. The last
test runs over real HTTP against a live server, as a health record would."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.utils import timezone
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinics.models import Session
from monitoring.collection.responses import response_enter
from monitoring.exports.fhir import code_problems
from monitoring.models import Response as FormResponse
from monitoring.models import SafetyAlert
from monitoring.outcomes.selectors import outcome_status_for_episodes
from tests.api.conftest import PHQ9_RISK, Api, make_token
from tests.api.test_integration import Integration, sign_in_and_create_token
from tests.auth import totp_enable

pytestmark = pytest.mark.django_db

PHQ9_14 = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 1, 7: 2, 8: 1, 9: 0}  # 14: moderate, no risk
GAD7_9 = {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}  # 9: mild
FOLLOW_UP = {"follow_up": "contacted", "note": "Called her the same day; safe, plan agreed."}


def answers(values: dict[int, int]) -> list[dict[str, int]]:
    return [{"item": item, "value": value} for item, value in values.items()]


@pytest.fixture
def therapist(tokens) -> Api:
    return Api(tokens["therapist"])


@pytest.fixture
def admin(tokens) -> Api:
    return Api(tokens["admin"])


@pytest.fixture
def measuring(clinic_a):
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save()
    return clinic_a


# --- Entering a measure from paper -----------------------------------------------------------------


def test_a_phq9_from_paper_is_stored_scored_and_banded_without_holding_the_session(therapist, world):
    url = f"/api/v1/sessions/{world.scheduled.code}/responses/"
    response = therapist.post(url, {"measure": "phq9", "answers": answers(PHQ9_14)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["measure"] == "phq9" and body["rater"] == "patient" and body["source"] == "staff"
    assert body["instrument"] == {"code": "phq9", "version": 1}
    assert [a["value"] for a in body["answers"]] == list(PHQ9_14.values())
    assert body["scores"] == [{"scale": "total", "name": "PHQ-9", "score": 14.0, "band": "moderate"}]
    assert Session.objects.get(pk=world.scheduled.pk).status == "scheduled"  # only the alliance holds it
    assert not SafetyAlert.objects.filter(session=world.scheduled).exists()
    # The alliance of the same session is a form of its own.
    alliance = therapist.post(url, {"answers": answers({n: 4 for n in range(1, 13)})}).json()
    assert alliance["measure"] == "alliance" and alliance["scores"][-1] == {
        "scale": "total",
        "name": "Overall",
        "score": 4.0,
        "band": "",
    }
    assert Session.objects.get(pk=world.scheduled.pk).status == "held"


def test_a_risk_answer_entered_through_the_api_raises_a_safety_alert(therapist, world):
    response = therapist.post(
        f"/api/v1/sessions/{world.held.code}/responses/", {"measure": "phq9", "answers": answers(PHQ9_RISK)}
    )
    assert response.status_code == 201
    alert = SafetyAlert.objects.get(session=world.held)
    assert (alert.item, alert.value, alert.answer_label) == (9, 2, "More than half the days")
    listed = therapist.get("/api/v1/safety-alerts/", {"patient": str(world.patient.code)}).json()
    assert [a["code"] for a in listed["results"]] == [str(alert.code), str(world.alert.code)]


def test_a_second_form_of_the_same_measure_is_a_conflict_but_another_measure_is_not(therapist, world):
    url = f"/api/v1/sessions/{world.answered.code}/responses/"
    again = therapist.post(url, {"measure": "phq9", "answers": answers(PHQ9_14)})
    assert again.status_code == 409 and again.json()["error"]["code"] == "used"
    gad7 = therapist.post(url, {"measure": "gad7", "answers": answers(GAD7_9)})
    assert gad7.status_code == 201
    assert gad7.json()["scores"] == [{"scale": "total", "name": "GAD-7", "score": 9.0, "band": "mild"}]
    assert sorted(FormResponse.objects.filter(session=world.answered).values_list("measure", flat=True)) == [
        "alliance",
        "gad7",
        "phq9",
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"measure": "core10"}, "measure", "Choose one of: alliance, phq9, gad7."),
        ({"measure": 9}, "measure", "Not a valid string."),
        ({"measure": ""}, "measure", "This field may not be blank."),
    ],
)
def test_an_unknown_measure_is_refused_naming_the_field(therapist, world, body, field, message):
    response = therapist.post(
        f"/api/v1/sessions/{world.held.code}/responses/", {**body, "answers": answers(PHQ9_14)}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {field: [message]}
    assert not FormResponse.objects.filter(session=world.held).exists()


def test_a_measure_is_checked_against_its_own_items_and_scale(therapist, world, clinic_a):
    url = f"/api/v1/sessions/{world.held.code}/responses/"
    twelve = therapist.post(url, {"measure": "phq9", "answers": answers({n: 1 for n in range(1, 13)})})
    assert twelve.status_code == 400
    problems = twelve.json()["error"]["fields"]["answers"]
    assert any("Item 10 is not part of" in p for p in problems), problems
    too_high = therapist.post(url, {"measure": "gad7", "answers": answers({**GAD7_9, 3: 4})})
    assert "Item 3: 4 is outside the scale (0 to 3)." in too_high.json()["error"]["fields"]["answers"]
    clinic_a.therapist_rating_enabled = True
    clinic_a.save()
    by_therapist = therapist.post(url, {"rater": "therapist", "measure": "phq9", "answers": answers(PHQ9_14)})
    assert by_therapist.status_code == 400
    assert by_therapist.json()["error"]["message"] == "There is no patient-rated measure 'phq9' loaded."
    assert not FormResponse.objects.filter(session=world.held).exists()


# --- Reading a session's responses ---------------------------------------------------------------------


def test_reading_a_response_selects_the_alliance_unless_a_measure_is_named(therapist, world):
    base = f"/api/v1/sessions/{world.answered.code}/responses/patient/"
    alliance = therapist.get(base).json()
    assert alliance["measure"] == "alliance" and len(alliance["answers"]) == 12
    phq9 = therapist.get(base, {"measure": "phq9"}).json()
    assert phq9["measure"] == "phq9" and [a["value"] for a in phq9["answers"]] == list(PHQ9_RISK.values())
    assert phq9["scores"] == [{"scale": "total", "name": "PHQ-9", "score": 10.0, "band": "moderate"}]
    assert therapist.get(base, {"measure": "gad7"}).status_code == 404  # loaded, not answered
    unknown = therapist.get(base, {"measure": "nope"})
    assert unknown.status_code == 400 and list(unknown.json()["error"]["fields"]) == ["measure"]


def test_a_symptom_response_reads_as_fhir_with_its_loinc_codes_and_total(therapist, world):
    base = f"/api/v1/sessions/{world.answered.code}/responses/patient/fhir/"
    resource = therapist.get(base, {"measure": "phq9"}).json()
    QuestionnaireResponse.model_validate(resource)
    assert not code_problems(resource)
    assert "phq9" in resource["questionnaire"]
    codings = [i["answer"][0]["valueCoding"]["code"] for i in resource["item"][:-1]]
    assert codings == ["LA6569-3"] * 8 + ["LA6570-1"]  # "Several days" x 8, "More than half the days"
    assert resource["item"][-1]["answer"] == [{"valueInteger": 10}]
    alliance = therapist.get(base).json()
    assert "bordin-alliance" in alliance["questionnaire"] and len(alliance["item"]) == 12
    assert alliance["id"] != resource["id"]


def test_the_responses_list_filters_by_measure(admin, world):
    rows = admin.get("/api/v1/responses/", {"measure": "phq9"}).json()["results"]
    assert [(r["session"], r["measure"]) for r in rows] == [(str(world.answered.code), "phq9")]
    alliance = admin.get("/api/v1/responses/", {"measure": "alliance"}).json()["results"]
    assert {r["measure"] for r in alliance} == {"alliance"} and len(alliance) == 1
    assert admin.get("/api/v1/responses/").json()["count"] == 2
    assert admin.get("/api/v1/responses/", {"measure": "x y"}).status_code == 400


def test_sessions_say_which_measures_answers_are_in(therapist, world, measuring):
    rows = {r["number"]: r for r in therapist.get("/api/v1/sessions/").json()["results"]}
    assert rows[1]["measures"] == {"alliance": True, "phq9": True, "gad7": False}
    assert rows[1]["patient_response"] is True
    assert rows[3]["measures"] == {"alliance": False, "phq9": False, "gad7": False}
    therapist.post(
        f"/api/v1/sessions/{world.held.code}/responses/", {"measure": "gad7", "answers": answers(GAD7_9)}
    )
    one = therapist.get(f"/api/v1/sessions/{world.held.code}/").json()
    assert one["measures"] == {"alliance": False, "phq9": False, "gad7": True}
    assert one["patient_response"] is False  # the alliance is not in


def test_without_symptom_measures_a_session_lists_the_alliance_only(therapist, world):
    assert therapist.get(f"/api/v1/sessions/{world.held.code}/").json()["measures"] == {"alliance": False}


# --- The analysis and the caseload -------------------------------------------------------------------


def test_the_analysis_has_each_measures_course_and_the_safety_alerts(therapist, world, alice, measuring):
    response_enter(
        session=world.held,
        rater="patient",
        answers={**{n: 3 for n in range(1, 9)}, 9: 0},
        user=alice,
        measure="phq9",
    )
    response_enter(session=world.held, rater="patient", answers=GAD7_9, user=alice, measure="gad7")
    body = therapist.get(f"/api/v1/patients/{world.patient.code}/analysis/").json()
    course = outcome_status_for_episodes(episodes=[world.episode])[world.episode.pk].courses["phq9"]
    phq9, gad7 = body["symptoms"]
    assert phq9["measure"] == "phq9" and phq9["name"] == "PHQ-9"
    assert (phq9["first"], phq9["latest"], phq9["latest_session"]) == (10.0, 24.0, 3)
    assert (phq9["band"], phq9["change"], phq9["reliable"]) == ("severe", 14.0, "deteriorated")
    assert phq9["not_on_track"] is True and phq9["curve_source"] == "published"
    assert (phq9["expected"], phq9["upper"]) == pytest.approx(course.expected[-1][1:])
    assert phq9["upper"] < 24.0  # why it is not on track
    assert [(p["session"], p["score"], p["band"]) for p in phq9["scores"]] == [
        (1, 10.0, "moderate"),
        (3, 24.0, "severe"),
    ]
    assert (gad7["first"], gad7["latest"], gad7["change"], gad7["reliable"]) == (9.0, 9.0, None, "")
    assert gad7["not_on_track"] is False and len(gad7["scores"]) == 1
    rows = {r["number"]: r["symptoms"] for r in body["sessions"]}
    assert rows == {3: {"phq9": 24.0, "gad7": 9.0}, 2: {}, 1: {"phq9": 10.0}}
    assert body["safety_open"] is True
    alert = body["safety_alerts"][0]
    assert alert["code"] == str(world.alert.code) and alert["open"] is True
    assert (alert["session"]["number"], alert["item"], alert["value"]) == (1, 9, 2)
    assert alert["answer_label"] == "More than half the days" and alert["measure"] == "phq9"


def test_the_analysis_keeps_a_followed_up_alert_but_no_longer_calls_it_open(therapist, world):
    assert (
        therapist.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", FOLLOW_UP).status_code == 200
    )
    body = therapist.get(f"/api/v1/patients/{world.patient.code}/analysis/").json()
    assert body["safety_open"] is False
    assert [(a["open"], a["follow_up"], a["follow_up_note"]) for a in body["safety_alerts"]] == [
        (False, "contacted", FOLLOW_UP["note"])
    ]


def test_the_caseload_puts_an_open_safety_alert_first_with_the_symptom_status(therapist, world):
    rows = therapist.get("/api/v1/caseload/").json()["results"]
    row = next(r for r in rows if r["patient"]["code"] == str(world.patient.code))
    assert rows[0] is row or rows[0]["patient"]["code"] == str(world.patient.code)
    assert row["safety"] is True and row["reason"].startswith("Safety: thoughts of self-harm")
    (phq9,) = row["symptoms"]
    assert (phq9["measure"], phq9["latest"], phq9["band"], phq9["change"]) == ("phq9", 10.0, "moderate", None)
    assert "scores" not in phq9
    therapist.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", FOLLOW_UP)
    after = next(
        r
        for r in therapist.get("/api/v1/caseload/").json()["results"]
        if r["patient"]["code"] == str(world.patient.code)
    )
    assert after["safety"] is False and not after["reason"].startswith("Safety")
    assert after["priority"] > row["priority"]


# --- Safety alerts -------------------------------------------------------------------------------------


def test_the_list_shows_open_alerts_by_default_and_all_on_request(therapist, world):
    def codes(**params: str) -> list[str]:
        return [a["code"] for a in therapist.get("/api/v1/safety-alerts/", params).json()["results"]]

    assert codes() == [str(world.alert.code)]
    assert codes(state="followed_up") == []
    therapist.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", FOLLOW_UP)
    assert codes() == []
    assert codes(state="followed_up") == codes(state="all") == [str(world.alert.code)]
    assert codes(state="all", patient=str(world.unepisoded.code)) == []
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert codes(state="all", since=later) == []
    assert codes(state="all", since=world.alert.raised_at.isoformat()) == [str(world.alert.code)]
    bad = therapist.get("/api/v1/safety-alerts/", {"state": "closed"})
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["state"]


def test_one_alert_reads_with_its_answer_and_e_mail_state(therapist, world):
    body = therapist.get(f"/api/v1/safety-alerts/{world.alert.code}/").json()
    assert body["patient"] == str(world.patient.code) and body["episode"] == str(world.episode.code)
    assert body["session"] == {"code": str(world.answered.code), "number": 1, "date": "2026-09-01"}
    assert (body["item"], body["value"], body["answer_label"]) == (9, 2, "More than half the days")
    assert body["notified_at"] is None  # the e-mail goes at commit; this test's transaction never commits
    assert (body["open"], body["follow_up"], body["followed_up_by"]) == (True, "", None)


def test_a_follow_up_is_recorded_once_with_who_did_it(therapist, world, alice):
    url = f"/api/v1/safety-alerts/{world.alert.code}/follow-up/"
    done = therapist.post(url, {"follow_up": "escalated", "note": "Crisis team informed."})
    assert done.status_code == 200
    body = done.json()
    assert (body["open"], body["follow_up"], body["follow_up_note"]) == (
        False,
        "escalated",
        "Crisis team informed.",
    )
    assert body["followed_up_by"] == "alice@a.test" and body["followed_up_at"]
    alert = SafetyAlert.objects.get(pk=world.alert.pk)
    assert (alert.follow_up, alert.followed_up_by) == ("escalated", alice)
    again = therapist.post(url, FOLLOW_UP)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "used",
        "message": "A follow-up has already been recorded for this alert.",
        "fields": {},
        "problems": [],
    }
    assert SafetyAlert.objects.get(pk=world.alert.pk).follow_up == "escalated"  # unchanged


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"note": "x"}, {"follow_up": ["This field is required."]}),
        ({"follow_up": "phoned", "note": "x"}, {"follow_up": ['"phoned" is not a valid choice.']}),
        ({"follow_up": "seen"}, {"note": ["This field is required."]}),
        ({"follow_up": "seen", "note": "   "}, {"note": ["Write a short note of what was done and agreed."]}),
        (
            {"follow_up": "seen", "note": "x" * 2001},
            {"note": ["Ensure this field has no more than 2000 characters."]},
        ),
        (
            {"follow_up": "seen", "note": "a\x1bb"},
            {"note": ["This contains an invisible control character (U+001B); remove it."]},
        ),
        ({"follow_up": ["seen"], "note": "x"}, {"follow_up": ["Choose one of the listed values."]}),
    ],
)
def test_bad_follow_up_input_is_a_400_naming_the_field(therapist, world, body, fields):
    response = therapist.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["fields"] == fields
    assert SafetyAlert.objects.get(pk=world.alert.pk).followed_up_at is None


@pytest.mark.parametrize("role", ["colleague", "other clinic", "other therapist"])
def test_an_alert_out_of_reach_is_404_and_stays_open(tokens, world, role):
    api = Api(tokens[role])
    for method, suffix, body in (("GET", "", None), ("POST", "follow-up/", FOLLOW_UP)):
        response = api(method, f"/api/v1/safety-alerts/{world.alert.code}/{suffix}", body)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert SafetyAlert.objects.get(pk=world.alert.pk).followed_up_at is None
    nothing = api.get("/api/v1/safety-alerts/00000000-0000-0000-0000-000000000000/")
    assert nothing.json() == api.get(f"/api/v1/safety-alerts/{world.alert.code}/").json()


def test_a_token_of_another_clinic_of_the_same_admin_does_not_reach_the_alert(world, dana, clinic_b):
    from clinics.models import Membership

    Membership.objects.create(user=dana, clinic=clinic_b, role="admin")
    api = Api(make_token(dana, clinic_b))
    assert [a["code"] for a in api.get("/api/v1/safety-alerts/").json()["results"]] == [
        str(world.other_alert.code)
    ]
    assert api.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", FOLLOW_UP).status_code == 404


def test_reads_are_audited_and_the_follow_up_is_in_the_audit_trail(therapist, world, alice):
    therapist.get("/api/v1/safety-alerts/")
    therapist.get(f"/api/v1/safety-alerts/{world.alert.code}/")
    therapist.get(f"/api/v1/sessions/{world.answered.code}/responses/patient/", {"measure": "phq9"})
    reads = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=alice).order_by("timestamp")
    assert [e.additional_data["what"] for e in reads] == [
        "safety alert list",
        "safety alert",
        "patient response",
    ]
    assert reads[0].additional_data["patients"] == [str(world.patient.code)]
    assert reads[1].additional_data["alert"] == str(world.alert.code)
    assert reads[2].additional_data["measure"] == "phq9"
    assert all(e.additional_data["via"] == "api" and e.additional_data["token"] for e in reads)
    therapist.post(f"/api/v1/safety-alerts/{world.alert.code}/follow-up/", FOLLOW_UP)
    change = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(SafetyAlert),
        object_pk=str(world.alert.pk),
        action=LogEntry.Action.UPDATE,
    )
    assert change.actor == alice and "follow_up" in change.changes_dict
    assert FOLLOW_UP["note"] not in str(change.changes)  # the note is withheld from the trail


# --- Over real HTTP --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_health_record_enters_symptoms_sees_the_alert_and_records_the_follow_up(
    live_server, clinic_a, dana, alice, instrument, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save()
    base = live_server.url
    ehr = Integration(base, sign_in_and_create_token(base, "dana@a.test", totp_enable(dana)))
    staff = ehr.call("GET", "/api/v1/staff/", 200).json()["results"]
    therapist = next(m["code"] for m in staff if m["email"] == "alice@a.test")
    patient = ehr.call("POST", "/api/v1/patients/", 201, {"label": "S.T.", "therapist": therapist}).json()
    ehr.call("POST", f"/api/v1/patients/{patient['code']}/episodes/", 201, {"started_on": "2026-01-05"})
    mail.outbox.clear()
    codes = []
    for day, phq9 in (("2026-01-05", PHQ9_14), ("2026-01-12", PHQ9_RISK)):
        session = ehr.call(
            "POST", f"/api/v1/patients/{patient['code']}/sessions/", 201, {"date": day, "status": "held"}
        ).json()
        assert session["measures"] == {"alliance": False, "phq9": False, "gad7": False}
        codes.append(session["code"])
        entered = ehr.call(
            "POST",
            f"/api/v1/sessions/{session['code']}/responses/",
            201,
            {"measure": "phq9", "answers": answers(phq9)},
        ).json()
        assert entered["measure"] == "phq9"
    # The second PHQ-9's item 9 raised an alert and e-mailed alice at once (it names nobody).
    assert [m.to for m in mail.outbox] == [["alice@a.test"]]
    assert "S.T." not in mail.outbox[0].body
    alerts = ehr.call("GET", "/api/v1/safety-alerts/", 200).json()["results"]
    assert [(a["patient"], a["session"]["code"], a["open"]) for a in alerts] == [
        (patient["code"], codes[1], True)
    ]
    assert alerts[0]["notified_at"] is not None
    read = ehr.call("GET", f"/api/v1/sessions/{codes[1]}/responses/patient/", 200, measure="phq9").json()
    assert read["scores"][0]["score"] == 10.0
    assert (
        ehr.call("GET", f"/api/v1/sessions/{codes[1]}/responses/patient/", 404).json()["error"]["code"]
        == "not_found"
    )
    analysis = ehr.call("GET", f"/api/v1/patients/{patient['code']}/analysis/", 200).json()
    assert analysis["safety_open"] is True
    assert [(s["measure"], s["first"], s["latest"], s["change"]) for s in analysis["symptoms"]] == [
        ("phq9", 14.0, 10.0, -4.0)
    ]
    done = ehr.call("POST", f"/api/v1/safety-alerts/{alerts[0]['code']}/follow-up/", 200, FOLLOW_UP).json()
    assert done["followed_up_by"] == "dana@a.test" and done["open"] is False
    ehr.call("POST", f"/api/v1/safety-alerts/{alerts[0]['code']}/follow-up/", 409, FOLLOW_UP)
    assert ehr.call("GET", "/api/v1/safety-alerts/", 200).json()["count"] == 0
    row = ehr.call("GET", "/api/v1/caseload/", 200).json()["results"][0]
    assert row["patient"]["code"] == patient["code"] and row["safety"] is False
    # Plain requests without the token get nothing.
    assert requests.get(f"{base}/api/v1/safety-alerts/", timeout=30).status_code == 401
