"""The API's patient analysis gives the patient page's events: a rupture and what followed it is
one event with its story and steps; acknowledging any of its flags acknowledges the event."""

from __future__ import annotations

import pytest

from monitoring.models import Flag
from tests.api.conftest import Api, make_token
from tests.flags.test_events import KJ, SLIDE, stored

pytestmark = pytest.mark.django_db


def test_the_analysis_gives_one_event_per_story_with_its_steps(alice, clinic_a, episode):
    flags = stored(episode, [*KJ, SLIDE])
    api = Api(make_token(alice, clinic_a))
    events = api.get(f"/api/v1/patients/{episode.patient.code}/analysis/").json()["flags"]
    assert [(e["kind"], e["session"]) for e in events] == [
        ("unrepaired", 11),
        ("low_alliance", 10),
        ("decline", 4),
    ]
    story = events[0]
    assert story["story"].startswith("dropped at session 8; a sudden loss from session 7 to 8")
    assert len(story["other_flags"]) == 19
    assert [(s["kind"], s["session"]) for s in story["steps"]] == [
        ("rupture", 8),
        ("sudden_loss", 10),
        ("unrepaired", 11),
        ("decline", 9),
    ]
    assert story["steps"][2]["words"] == "not back by session 11" and "rule" in story["steps"][2]
    assert events[1]["story"] == "" and len(events[1]["steps"]) == 1

    decline = next(f for f in flags if (f.kind, f.scale, f.session.number) == ("decline", "bond", 9))
    done = api.post(f"/api/v1/flags/{decline.code}/acknowledge/", {"acknowledgement": "discussed"}).json()
    assert len(done["acknowledged"]) == 20
    assert Flag.objects.filter(episode=episode, acknowledgement="").count() == 2
