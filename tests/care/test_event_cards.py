"""The patient page shows one card per event: K.J.'s rupture, sudden loss, decline and unrepaired
rupture (twenty flags on five scales) are one story; acknowledging it from the page covers them all."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from monitoring.models import Flag, Notification
from tests.auth import sign_in
from tests.flags.test_events import KJ, SLIDE, stored

pytestmark = pytest.mark.django_db


def cards(html: str) -> list[str]:
    return re.findall(r'<li class="card flag [^"]*" id="flag-([0-9a-f-]+)"', html)


def test_one_card_where_there_were_five(client, alice, episode):
    flags = stored(episode, [*KJ, SLIDE])
    sign_in(client, alice)
    page = client.get(reverse("monitoring:patient", args=[episode.patient.code]))
    assert page.status_code == 200
    html = page.content.decode()
    head = next(f for f in flags if (f.kind, f.scale) == ("unrepaired", "total"))
    low = next(f for f in flags if f.kind == "low_alliance")
    slide = next(f for f in flags if f.session.number == 4)
    assert cards(html) == [str(head.code), str(low.code), str(slide.code)]
    story = html.split(f'id="flag-{head.code}"')[1].split("</li>\n    \n")[0]
    assert "Sessions 8 to 11" in story
    alone = html.split(f'id="flag-{low.code}"')[1].split("</li>\n    \n")[0]
    assert "Session 10 · " in alone and "Sessions" not in alone
    assert "Total alliance, Goal and task agreement, Task agreement, Goal agreement, Bond" in story
    assert (
        "Dropped at session 8; a sudden loss from session 7 to 8 (confirmed at session 10); "
        "not back by session 11; a decline followed (flagged at session 9)." in story
    )
    assert story.count("How was this decided?") == 4, "each step keeps its own"
    for kind in ("rupture", "sudden_loss", "unrepaired", "decline"):
        assert f"{kind} on total at" in story
    assert "One event: acknowledging it covers every step on every scale." in story
    # Two open events (the story, the low alliance); the slide at session 4 is old news.
    assert re.search(r'figure-value">2<', html)


def test_acknowledging_the_card_acknowledges_every_flag_of_the_story_and_undo_reopens_it(
    client, alice, episode
):
    flags = stored(episode, [*KJ, SLIDE])
    sign_in(client, alice)
    head = next(f for f in flags if (f.kind, f.scale) == ("unrepaired", "total"))
    done = client.post(
        reverse("monitoring:flag-acknowledge", args=[head.code]),
        {"acknowledgement": "discussed", "note": "We talked about the session 8 rupture"},
    )
    assert done.status_code == 302 and done["Location"].endswith(f"#flag-{head.code}")
    assert Flag.objects.filter(episode=episode, acknowledgement="discussed").count() == 20
    assert Flag.objects.filter(episode=episode, acknowledgement="").count() == 2  # low alliance, slide
    html = client.get(reverse("monitoring:patient", args=[episode.patient.code])).content.decode()
    story = html.split(f'id="flag-{head.code}"')[1].split("</li>\n    \n")[0]
    assert "✓ Discussed with patient" in story and "We talked about the session 8 rupture" in story
    assert "Undo acknowledgement" in story and 'name="acknowledgement"' not in story
    client.post(reverse("monitoring:flag-unacknowledge", args=[head.code]))
    assert not Flag.objects.filter(episode=episode).exclude(acknowledgement="").exists()


def test_opening_the_page_reads_the_notifications_of_every_flag_of_the_story(client, alice, episode):
    flags = stored(episode, KJ)
    noted = [f for f in flags if f.alarm and f.kind in ("rupture", "unrepaired") and f.scale == "total"]
    for f in noted:
        Notification.objects.create(user=alice, flag=f)
    sign_in(client, alice)
    client.get(reverse("monitoring:patient", args=[episode.patient.code]))
    assert not Notification.objects.filter(user=alice, read_at=None).exists()
