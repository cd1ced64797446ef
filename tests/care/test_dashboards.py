"""Caseload and patient page: access, order of attention, flag workflow, constant queries."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from clinics.models import Patient
from monitoring.analytics.simulate import simulate_cohort
from monitoring.care.rows import rows_cache_forget
from monitoring.collection.importing import items_import_csv, responses_import
from monitoring.models import Flag, Notification
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def login(client, user):
    sign_in(client, user)
    return client


def import_cohort(
    clinic, therapist, n: int, sessions: int, seed: int = 3, scenarios=None, prefix: str = ""
) -> None:
    cohort = simulate_cohort(n, seed=seed, sessions=(sessions, sessions), scenarios=scenarios)
    csv = items_import_csv(cohort.items, first_date=date(2026, 1, 5), prefix=prefix)
    with TestCase.captureOnCommitCallbacks(execute=True):  # the import analyses its episodes on commit
        responses_import(clinic=clinic, therapist=therapist, file=csv)


def caseload_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_the_caseload_issues_the_same_number_of_queries_for_5_and_60_patients(client, clinic_a, alice):
    """Whether its rows are computed (new answers) or read from the cache (nothing changed)."""
    login(client, alice)
    import_cohort(clinic_a, alice, 5, 10, prefix="a")
    caseload_queries(client)  # warm: estimates exist from now on
    rows_cache_forget(list(Patient.objects.values_list("pk", flat=True)))
    computed = caseload_queries(client)
    cached = caseload_queries(client)
    import_cohort(clinic_a, alice, 55, 10, seed=4, prefix="b")
    assert caseload_queries(client) == computed
    assert caseload_queries(client) == cached
    assert cached < computed


def test_the_patient_page_issues_the_same_number_of_queries_whatever_the_sessions(client, clinic_a, alice):
    login(client, alice)
    import_cohort(clinic_a, alice, 1, 8, scenarios={"rupture_unrepaired": 1}, prefix="short")
    import_cohort(clinic_a, alice, 1, 30, seed=9, scenarios={"rupture_unrepaired": 1}, prefix="long")
    counts = []
    for label in ("shortP001", "longP001"):
        code = Patient.objects.get(label=label).code
        client.get(f"/patients/{code}/")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/patients/{code}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(
    ("who", "sees_patient_page", "in_caseload"),
    [
        ("alice", 200, True),
        ("dana", 200, True),
        ("bob", 404, False),
        ("charlie", 404, False),
        ("erin", 404, False),
    ],
)
def test_who_sees_a_patient(client, request, clinic_a, alice, who, sees_patient_page, in_caseload):
    import_cohort(clinic_a, alice, 1, 8, prefix="x")
    patient = Patient.objects.get(label="xP001")
    login(client, request.getfixturevalue(who))
    assert client.get(f"/patients/{patient.code}/").status_code == sees_patient_page
    assert ("xP001" in client.get("/").content.decode()) is in_caseload


@pytest.mark.parametrize("who", ["bob", "charlie", "erin"])
def test_outsiders_cannot_acknowledge_a_flag(client, request, clinic_a, alice, who):
    import_cohort(clinic_a, alice, 1, 12, scenarios={"rupture_unrepaired": 1}, prefix="r")
    flag = Flag.objects.first()
    login(client, request.getfixturevalue(who))
    response = client.post(f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "discussed"})
    assert response.status_code == 404
    flag.refresh_from_db()
    assert flag.acknowledgement == ""


def test_anonymous_visitors_are_sent_to_sign_in(client, clinic_a, alice):
    import_cohort(clinic_a, alice, 1, 6, prefix="y")
    patient = Patient.objects.get(label="yP001")
    for url in ("/", f"/patients/{patient.code}/"):
        assert client.get(url)["Location"].startswith("/accounts/login/")


def test_the_caseload_puts_unrepaired_ruptures_first_and_says_why(client, clinic_a, alice):
    import_cohort(clinic_a, alice, 3, 14, scenarios={"stable": 1}, prefix="s")
    import_cohort(clinic_a, alice, 1, 14, seed=11, scenarios={"rupture_unrepaired": 1}, prefix="u")
    login(client, alice)
    html = client.get("/").content.decode()
    assert "Needs attention" in html
    assert html.index("uP001") < min(html.index(f"sP00{n}") for n in (1, 2, 3))
    assert "Unrepaired rupture" in html


def test_acknowledging_a_flag_keeps_it_visible_and_drops_its_priority(client, clinic_a, alice):
    import_cohort(clinic_a, alice, 1, 14, seed=11, scenarios={"rupture_unrepaired": 1}, prefix="u")
    patient = Patient.objects.get(label="uP001")
    login(client, alice)
    page = client.get(f"/patients/{patient.code}/").content.decode()
    assert "How was this decided?" in page and "What might help" in page
    for flag in Flag.objects.filter(episode__patient=patient, acknowledgement=""):
        client.post(
            f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "discussed", "note": "Talked it through"}
        )
    flag = Flag.objects.filter(episode__patient=patient).first()
    assert (flag.acknowledgement, flag.acknowledged_by, flag.acknowledged_note) == (
        "discussed",
        alice,
        "Talked it through",
    )
    page = client.get(f"/patients/{patient.code}/").content.decode()
    assert "Discussed with patient" in page and "Talked it through" in page
    caseload = client.get("/").content.decode()
    assert "Unrepaired rupture" not in caseload.split("uP001")[1].split("</tr>")[0]


def test_acknowledging_needs_a_valid_choice(client, clinic_a, alice):
    import_cohort(clinic_a, alice, 1, 14, seed=11, scenarios={"rupture_unrepaired": 1}, prefix="u")
    flag = Flag.objects.first()
    login(client, alice)
    client.post(f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "whatever"})
    client.post(f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "discussed", "note": "x" * 501})
    flag.refresh_from_db()
    assert flag.acknowledgement == ""


def test_new_flags_show_as_notifications_until_read(client, clinic_a, alice):
    # A rupture at session 10 of 14, unrepaired at 13: recent enough to be news after an import.
    import_cohort(clinic_a, alice, 1, 14, seed=14, scenarios={"rupture_unrepaired": 1}, prefix="u")
    login(client, alice)
    assert Notification.objects.filter(user=alice, read_at=None).exists()
    assert "New since your last visit" in client.get("/").content.decode()
    client.post("/notifications/read/")
    assert "New since your last visit" not in client.get("/").content.decode()


def test_the_patient_page_shows_every_item_answer(client, clinic_a, alice):
    import_cohort(clinic_a, alice, 1, 6, prefix="i")
    patient = Patient.objects.get(label="iP001")
    login(client, alice)
    html = client.get(f"/patients/{patient.code}/").content.decode()
    assert html.count('class="num item"') == 6 * 12


def test_an_empty_caseload_says_what_to_do(client, alice):
    login(client, alice)
    assert "No patients yet" in client.get("/").content.decode()


def test_every_read_of_patient_data_is_in_the_audit_trail(client, clinic_a, alice):
    from auditlog.models import LogEntry

    import_cohort(clinic_a, alice, 2, 6, prefix="z")
    patient = Patient.objects.get(label="zP001")
    login(client, alice)
    client.get("/")
    client.get(f"/patients/{patient.code}/")
    client.get(f"/sessions/{patient.episodes.get().sessions.first().code}/")
    reads = LogEntry.objects.filter(
        action=LogEntry.Action.ACCESS, actor=alice, additional_data__has_key="what"
    )
    reads = reads.order_by("timestamp")
    assert [e.additional_data["what"] for e in reads] == ["caseload", "patient page", "session page"]
    assert sorted(reads[0].additional_data["patients"]) == sorted(
        str(p.code) for p in Patient.objects.filter(label__startswith="z")
    )
    assert reads[1].object_pk == str(patient.pk) and reads[1].remote_addr in (None, "127.0.0.1")


def test_looking_back_together_shows_the_patients_own_course_without_flags_and_is_audited(
    client, clinic_a, alice
):
    from auditlog.models import LogEntry

    login(client, alice)
    import_cohort(clinic_a, alice, 1, 10, scenarios={"rupture_unrepaired": 1}, prefix="r")
    patient = Patient.objects.get(label="rP001")
    assert Flag.objects.filter(episode__patient=patient).exists()  # there are flags to keep out
    page = client.get(f"/patients/{patient.code}/review/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "How our sessions felt to you" in html and "You answered after 10 sessions" in html
    assert "site-header" not in html  # full screen
    assert not any(word in html.lower() for word in ("rupture", "acknowledge", "threshold", "baseline"))
    entry = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, actor=alice).latest("timestamp")
    assert entry.additional_data["what"] == "review with patient"
    assert f"/patients/{patient.code}/review/" in client.get(f"/patients/{patient.code}/").content.decode()
