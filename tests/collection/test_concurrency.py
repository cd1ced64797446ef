"""Nothing lost, nothing doubled: concurrent submissions against the real database."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from clinics.errors import ApplicationError
from monitoring.collection.invitations import invitation_create, invitation_for_token
from monitoring.collection.responses import submission_create
from monitoring.models import Answer, Invitation, Response, SafetyAlert

FULL = {n: 4 for n in range(1, 13)}


def race(clients: int, attempt: Callable[[int], None]) -> list[str]:
    """``attempt(i)`` from ``clients`` threads released together; each outcome is "stored" or the
    ApplicationError's code."""
    barrier = threading.Barrier(clients)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            attempt(i)
            result = "stored"
        except ApplicationError as error:
            result = error.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_with_one_token_store_exactly_one(session, alice):
    if connection.vendor != "postgresql":
        pytest.skip("threads sharing one SQLite test database serialise anyway; this proves PostgreSQL")
    _, token = invitation_create(session=session, created_by=alice)
    clients = 8

    def submit(i: int) -> None:
        value = 1 + i % 5
        submission_create(
            invitation=invitation_for_token(token=token), answers={n: value for n in range(1, 13)}
        )

    outcomes = race(clients, submit)
    assert sorted(outcomes) == ["stored"] + ["used"] * (clients - 1)
    assert Response.objects.count() == 1
    response = Response.objects.get()
    assert response.answers.count() == 12
    assert len(set(response.answers.values_list("value", flat=True))) == 1  # one submission's answers, whole


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_storing_keeps_the_link_usable(session, alice, monkeypatch):
    _, token = invitation_create(session=session, created_by=alice)
    original = Answer.objects.bulk_create

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Answer.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    assert not Response.objects.exists()
    assert Invitation.objects.get().used_at is None  # the claim was rolled back with the answers
    monkeypatch.setattr(Answer.objects, "bulk_create", original)
    submission_create(invitation=invitation_for_token(token=token), answers=FULL)
    assert Response.objects.get().answers.count() == 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_alliance_and_symptoms_store_each_form_once_and_one_alert(
    clinic_a, session, alice
):
    """The combined link (alliance, PHQ-9 with a risk answer, GAD-7) sent from 8 tabs at once:
    one submission wins whole, three responses and one safety alert, never a mix of two tabs."""
    if connection.vendor != "postgresql":
        pytest.skip("threads sharing one SQLite test database serialise anyway; this proves PostgreSQL")
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save(update_fields=["outcome_measures"])
    _, token = invitation_create(session=session, created_by=alice)
    clients = 8

    def submit(i: int) -> None:
        value = 1 + i % 3
        submission_create(
            invitation=invitation_for_token(token=token),
            answers={n: 1 + value for n in range(1, 13)},
            measures={"phq9": {n: value for n in range(1, 10)}, "gad7": {n: value for n in range(1, 8)}},
        )

    outcomes = race(clients, submit)
    assert sorted(outcomes) == ["stored"] + ["used"] * (clients - 1)
    assert sorted(Response.objects.values_list("measure", flat=True)) == ["alliance", "gad7", "phq9"]
    assert Answer.objects.count() == 12 + 9 + 7
    # One tab's answers, whole: every symptom answer is the winner's value, the alliance one above it.
    symptom_values = set(Answer.objects.exclude(response__measure="alliance").values_list("value", flat=True))
    alliance_values = set(Answer.objects.filter(response__measure="alliance").values_list("value", flat=True))
    assert len(symptom_values) == 1 and alliance_values == {symptom_values.pop() + 1}
    assert SafetyAlert.objects.count() == 1  # item 9 above 0 in every tab, one alert
