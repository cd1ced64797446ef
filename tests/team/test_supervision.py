"""The supervisor role (issue 16, item 7): who a supervisor reaches (the patients of the therapists
assigned to them, nothing else), that they change nothing, that an assignment never crosses
clinics (the database refuses it), and how the clinic admin assigns therapists on the Staff page."""

from __future__ import annotations

from datetime import date

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, transaction
from django.test import Client

from clinics.errors import ApplicationError
from clinics.models import Episode, Membership, Patient, Session, SupervisorAssignment
from clinics.permissions import may_change, therapists_overseen_by
from clinics.services import membership_deactivate, membership_set_role, staff_create, supervision_set
from tests.auth import sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def membership(user, clinic) -> Membership:
    return Membership.objects.select_related("user").get(user=user, clinic=clinic)


@pytest.fixture
def patients(clinic_a, clinic_b, alice, bob, charlie):
    made = {}
    for label, clinic, therapist in (
        ("A1", clinic_a, alice),
        ("B1", clinic_a, bob),
        ("C1", clinic_b, charlie),
    ):
        patient = Patient.objects.create(clinic=clinic, label=label, therapist=therapist)
        episode = Episode.objects.create(patient=patient, therapist=therapist, started_on=date(2026, 9, 1))
        Session.objects.create(episode=episode, number=1, date=date(2026, 9, 1), status="held")
        made[label] = patient
    return made


def visible(user) -> list[str]:
    return sorted(Patient.objects.visible_to(user).values_list("label", flat=True))


def test_a_supervisor_sees_exactly_the_patients_of_the_therapists_assigned_to_them(patients, sam, dana):
    assert visible(sam) == ["A1"], "alice's, not bob's, not another clinic's"
    assert list(Patient.objects.changeable_by(sam)) == []
    assert not may_change(user=sam, patient=patients["A1"])
    assert may_change(user=dana, patient=patients["A1"]) and visible(dana) == ["A1", "B1"]


def test_an_assignment_opens_nothing_once_either_membership_is_inactive(patients, sam, alice, clinic_a):
    Membership.objects.filter(user=alice, clinic=clinic_a).update(is_active=False)
    assert visible(sam) == []
    Membership.objects.filter(user=alice, clinic=clinic_a).update(is_active=True)
    Membership.objects.filter(user=sam, clinic=clinic_a).update(is_active=False)
    assert visible(sam) == []


def test_leaving_the_role_or_the_clinic_ends_the_assignments(patients, sam, alice, bob, dana, clinic_a):
    membership_set_role(membership=membership(sam, clinic_a), role="therapist", by=dana)
    assert not SupervisorAssignment.objects.exists() and visible(sam) == []
    membership_set_role(membership=membership(sam, clinic_a), role="supervisor", by=dana)
    supervision_set(supervisor=membership(sam, clinic_a), therapists=[membership(bob, clinic_a)])
    assert visible(sam) == ["B1"]
    membership_set_role(membership=membership(bob, clinic_a), role="admin", by=dana)
    assert not SupervisorAssignment.objects.exists(), "an admin is no therapist to supervise"
    membership_set_role(membership=membership(bob, clinic_a), role="therapist", by=dana)
    supervision_set(supervisor=membership(sam, clinic_a), therapists=[membership(bob, clinic_a)])
    membership_deactivate(membership=membership(sam, clinic_a), by=dana)
    assert not SupervisorAssignment.objects.exists()


def test_the_database_refuses_an_assignment_across_clinics(sam, charlie, clinic_a, clinic_b):
    with pytest.raises(IntegrityError), transaction.atomic():
        SupervisorAssignment.objects.create(
            supervisor=membership(sam, clinic_a), therapist=membership(charlie, clinic_b)
        )
    row = SupervisorAssignment.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        SupervisorAssignment.objects.filter(pk=row.pk).update(therapist=membership(charlie, clinic_b))
    with pytest.raises(IntegrityError), transaction.atomic():
        SupervisorAssignment.objects.create(supervisor=row.supervisor, therapist=row.supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        SupervisorAssignment.objects.create(supervisor=row.supervisor, therapist=row.therapist)


def test_only_a_supervisor_is_given_only_therapists_of_their_clinic(
    sam, alice, bob, dana, charlie, clinic_a, clinic_b
):
    with pytest.raises(ApplicationError, match="active supervisor"):
        supervision_set(supervisor=membership(bob, clinic_a), therapists=[membership(alice, clinic_a)])
    for wrong in (membership(charlie, clinic_b), membership(dana, clinic_a)):
        with pytest.raises(ApplicationError, match="active therapists of this clinic"):
            supervision_set(supervisor=membership(sam, clinic_a), therapists=[wrong])
    assert list(SupervisorAssignment.objects.values_list("therapist__user__email", flat=True)) == [
        "alice@a.test"
    ]


def test_who_oversees_which_therapists(sam, alice, bob, dana, erin, charlie):
    assert [m.user for m in therapists_overseen_by(user=sam)] == [alice]
    assert sorted(m.user.email for m in therapists_overseen_by(user=dana)) == ["alice@a.test", "bob@a.test"]
    assert [m.user for m in therapists_overseen_by(user=erin)] == [charlie]
    assert list(therapists_overseen_by(user=alice)) == []


def test_the_clinic_admin_assigns_therapists_on_the_staff_page(client, sam, alice, bob, dana, clinic_a):
    sign_in(client, dana)
    page = client.get("/clinic/clinic-a/staff/").content.decode()
    assert "Supervises: Alice A" in page and "Therapists Sam A supervises" in page
    url = f"/clinic/clinic-a/staff/{membership(sam, clinic_a).code}/supervise/"
    response = client.post(
        url, {"therapist": [membership(bob, clinic_a).code, membership(alice, clinic_a).code]}
    )
    assert response.status_code == 302
    assert sorted(SupervisorAssignment.objects.values_list("therapist__user__email", flat=True)) == [
        "alice@a.test",
        "bob@a.test",
    ]
    shown = [str(m) for m in client.get("/clinic/clinic-a/staff/").context["messages"]]
    assert shown == [
        "Sam A now supervises Alice A, Bob A: their caseloads and patients, read-only, and the Team page."
    ]
    client.post(url, {})
    assert not SupervisorAssignment.objects.exists()
    changes = LogEntry.objects.filter(content_type__model="supervisorassignment")
    assert changes.filter(action=LogEntry.Action.CREATE).count() == 2  # the fixture's alice, then bob
    assert changes.filter(action=LogEntry.Action.DELETE).count() == 2
    assert {e.additional_data["clinic"] for e in changes} == {clinic_a.pk}


def test_an_admin_cannot_assign_another_clinics_therapist_or_a_made_up_one(
    client, sam, dana, charlie, clinic_a, clinic_b
):
    sign_in(client, dana)
    url = f"/clinic/clinic-a/staff/{membership(sam, clinic_a).code}/supervise/"
    for code in (membership(charlie, clinic_b).code, "not-a-code"):
        client.post(url, {"therapist": [code]})
        assert list(SupervisorAssignment.objects.values_list("therapist__user__email", flat=True)) == [
            "alice@a.test"
        ]


def test_a_supervisor_can_be_invited(client, dana, clinic_a):
    sign_in(client, dana)
    response = client.post("/clinic/clinic-a/staff/", {"email": "sue@a.test", "role": "supervisor"})
    assert response.status_code == 200
    assert clinic_a.staff_invitations.get(email="sue@a.test").role == "supervisor"


def test_the_supervisor_caseload_lists_the_assigned_therapists_patients_and_is_audited(
    client, patients, sam, alice
):
    sign_in(client, sam)
    response = client.get("/")
    assert [r.patient.label for r in response.context["rows"]] == ["A1"]
    assert [t.pk for t in response.context["therapists"]] == [alice.pk], "a filter by the assigned therapist"
    entry = LogEntry.objects.filter(actor=sam, action=LogEntry.Action.ACCESS).latest("timestamp")
    assert entry.additional_data["what"] == "caseload" and entry.additional_data["patients"] == [
        str(patients["A1"].code)
    ]
    client.get(f"/patients/{patients['A1'].code}/")
    entry = LogEntry.objects.filter(actor=sam, action=LogEntry.Action.ACCESS).latest("timestamp")
    assert entry.additional_data["what"] == "patient page" and entry.additional_data["patient"] == str(
        patients["A1"].code
    )
    assert client.get(f"/patients/{patients['B1'].code}/").status_code == 404


def test_the_tablet_offers_a_supervisor_no_session(client, patients, sam, alice):
    Session.objects.filter(episode__patient=patients["A1"]).update(date=date.today())
    assert [s.episode.patient.label for s in sign_in(Client(), alice).get("/kiosk/").context["sessions"]] == [
        "A1"
    ]
    assert list(sign_in(client, sam).get("/kiosk/").context["sessions"]) == []


def test_the_header_links_the_team_page_for_supervisors_and_admins_only(client, sam, alice, dana):
    assert 'href="/team/clinic-a/"' in sign_in(Client(), sam).get("/").content.decode()
    assert 'href="/team/clinic-a/"' in sign_in(Client(), dana).get("/").content.decode()
    assert 'href="/team/clinic-a/"' not in sign_in(Client(), alice).get("/").content.decode()


def test_a_new_supervisor_sees_nothing_until_assigned(patients, clinic_a):
    user = staff_create(clinic=clinic_a, email="new@a.test", role="supervisor", password=PASSWORD)
    assert visible(user) == []


def test_the_header_offers_the_tablet_to_those_who_hand_it_over(client: Client, sam, alice):
    """A supervisor only looks: no Tablet link (its list would be empty); a therapist has it."""
    sign_in(client, sam)
    assert 'href="/kiosk/"' not in client.get("/").content.decode()
    sign_in(client, alice)
    assert 'href="/kiosk/"' in client.get("/").content.decode()
