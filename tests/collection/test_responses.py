from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from monitoring.collection.responses import response_create
from monitoring.models import Answer, Response

pytestmark = pytest.mark.django_db

FULL = {n: 4 for n in range(1, 13)}


def test_it_stores_a_response_with_all_its_answers(session, instrument):
    response = response_create(session=session, instrument=instrument, answers=FULL, source="link")
    assert response.answers.count() == 12
    assert {a.value for a in response.answers.all()} == {4}


def test_the_database_refuses_a_second_patient_response_for_a_session(session, instrument):
    response_create(session=session, instrument=instrument, answers=FULL, source="link")
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(
            session=session,
            instrument=instrument,
            rater="patient",
            source="tablet",
            submitted_at=timezone.now(),
        )


def test_a_second_submission_says_already_received_and_stores_nothing(session, instrument):
    response_create(session=session, instrument=instrument, answers=FULL, source="link")
    with pytest.raises(ApplicationError, match="already been received"):
        response_create(session=session, instrument=instrument, answers={**FULL, 1: 1}, source="tablet")
    assert Response.objects.count() == 1
    assert Answer.objects.filter(value=1).count() == 0


def test_the_database_refuses_an_answer_outside_every_scale(session, instrument):
    """The database's own floor (0-10, the widest scale an instrument may have); each
    instrument's scale is checked by the write path (next tests)."""
    response = response_create(session=session, instrument=instrument, answers=FULL, source="link")
    item = instrument.items.get(number=1)
    response.answers.filter(item=item).delete()
    for value in (11, 200):
        with pytest.raises(IntegrityError), transaction.atomic():
            Answer.objects.create(response=response, item=item, value=value)


def test_the_database_refuses_two_answers_to_one_item(session, instrument):
    response = response_create(session=session, instrument=instrument, answers=FULL, source="link")
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.create(response=response, item=instrument.items.get(number=1), value=3)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({**FULL, 3: 6}, "Item 3: 6 is outside the scale (1 to 5)."),
        ({**FULL, 3: 0}, "Item 3: 0 is outside the scale (1 to 5)."),
        ({k: v for k, v in FULL.items() if k != 7}, "No answer for item 7."),
        ({**FULL, 13: 3}, "Item 13 is not part of bordin-alliance v1."),
    ],
)
def test_it_refuses_bad_answers_with_a_specific_message_and_stores_nothing(
    session, instrument, answers, message
):
    with pytest.raises(ApplicationError) as caught:
        response_create(session=session, instrument=instrument, answers=answers, source="link")
    assert message in caught.value.problems
    assert Response.objects.count() == 0
