"""Flags grouped into events (monitoring.flags.events): a rupture and what follows it is one story,
acknowledged, undone and counted on the caseload as one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from auditlog.models import LogEntry

from clinics.models import Episode, Session
from monitoring.care.selectors import _badges, caseload_for_user, flag_views
from monitoring.flags import events
from monitoring.flags.services import flag_acknowledge, flag_unacknowledge
from monitoring.models import Flag

SCALES = ("total", "goal", "task", "bond", "agreement")

#: K.J. of the demo clinic: a rupture at session 8 on every scale (an alarm on the total, goal
#: and goal-and-task agreement), the decline its drop set off (raised at 9), the sudden loss from
#: session 7 to 8 (confirmed at 10), the unrepaired rupture at 11, and the alliance staying below
#: the clinic's cut-off from session 8 (raised at 10).
KJ: list[tuple[int, str, tuple[str, ...], dict[str, object], tuple[str, ...]]] = [
    (8, "rupture", SCALES, {"rule": "baseline_k_sd"}, ("total", "goal", "agreement")),
    (
        9,
        "decline",
        SCALES,
        {"rule": "lower_cusum", "rupture_session": 8, "from_session": 6, "to_session": 9},
        (),
    ),
    (10, "sudden_loss", SCALES, {"rule": "tang_derubeis", "from_session": 7, "to_session": 8}, ()),
    (11, "unrepaired", SCALES, {"rule": "window_ended", "rupture_session": 8}, ("total",)),
    (
        10,
        "low_alliance",
        ("total",),
        {"rule": "below_cutoff", "from_session": 8, "to_session": 10},
        ("total",),
    ),
]

#: A decline of its own, long before (no rupture in its window).
SLIDE = (4, "decline", ("task",), {"rule": "lower_cusum", "from_session": 1, "to_session": 4}, ("task",))


def built(rows: list, sessions: dict[int, Session] | None = None) -> list[Flag]:
    """Flag rows (unsaved unless ``sessions`` are saved ones)."""
    sessions = sessions or {}
    flags = []
    for number, kind, scales, detail, alarms in rows:
        for scale in scales:
            flags.append(
                Flag(
                    session=sessions.get(number) or Session(number=number),
                    scale=scale,
                    kind=kind,
                    alarm=scale in alarms,
                    magnitude=1.0,
                    explanation=f"{kind} on {scale} at {number}.",
                    detail=dict(detail),
                )
            )
    return flags


def stored(episode: Episode, rows: list) -> list[Flag]:
    """The flag rows stored for the episode, with held sessions 1 to 12."""
    start = date.today() - timedelta(days=7 * 12)
    sessions = {
        n: Session.objects.create(
            episode=episode, number=n, date=start + timedelta(days=7 * n), status=Session.Status.HELD
        )
        for n in range(1, 13)
    }
    flags = built(rows, sessions)
    for f in flags:
        f.episode = episode
        f.save()
    return flags


# Grouping ------------------------------------------------------------------------------------


def test_a_rupture_and_what_followed_it_is_one_story():
    stories = [e for e in events.flag_events(built(KJ)) if e.story]
    assert len(stories) == 1
    (story,) = stories
    assert [(s.kind, s.session) for s in story.steps] == [
        ("rupture", 8),
        ("sudden_loss", 10),
        ("unrepaired", 11),
        ("decline", 9),
    ]
    assert len(story.flags) == 20
    assert story.kind == "unrepaired" and story.start == 8 and story.session == 11
    assert (story.head.kind, story.head.scale) == ("unrepaired", "total")
    assert story.scales == ["total", "agreement", "task", "goal", "bond"]
    assert story.told == (
        "dropped at session 8; a sudden loss from session 7 to 8 (confirmed at session 10); "
        "not back by session 11; a decline followed (flagged at session 9)"
    )


def test_low_alliance_and_an_unrelated_decline_are_cards_of_their_own():
    found = events.flag_events(built([*KJ, SLIDE]))
    assert [(e.kind, e.start, e.story, len(e.flags)) for e in found] == [
        ("unrepaired", 8, True, 20),
        ("low_alliance", 8, False, 1),
        ("decline", 4, False, 1),
    ]


def test_a_decline_whose_rupture_is_not_among_the_flags_stays_its_own_card():
    rows = [(9, "decline", ("total",), {"rule": "lower_cusum", "rupture_session": 5}, ("total",))]
    (event,) = events.flag_events(built(rows))
    assert not event.story and event.kind == "decline" and event.start == 9


def test_a_sudden_loss_ending_elsewhere_and_a_sudden_gain_stay_apart():
    rows = [
        (5, "rupture", ("total",), {"rule": "baseline_k_sd"}, ("total",)),
        (9, "sudden_loss", ("total",), {"from_session": 6, "to_session": 7}, ()),
        (9, "sudden_gain", ("total",), {"from_session": 2, "to_session": 3}, ()),
    ]
    found = events.flag_events(built(rows))
    assert sorted((e.kind, e.start) for e in found) == [
        ("rupture", 5),
        ("sudden_gain", 9),
        ("sudden_loss", 9),
    ]


def test_a_repaired_rupture_no_longer_counts_but_its_decline_does():
    rows = [
        (8, "rupture", ("total",), {"rule": "baseline_k_sd"}, ("total",)),
        (9, "decline", ("total",), {"rupture_session": 8}, ("total",)),
        (10, "repair", ("total",), {"rupture_session": 8}, ()),
    ]
    (story,) = events.flag_events(built(rows))
    assert story.kind == "rupture" and story.told.endswith(
        "back by session 10; a decline followed (flagged at session 9)"
    )
    assert [f.kind for f in events.open_flags(story, last_held=10)] == ["decline"]


def test_the_caseload_counts_a_story_once_with_its_most_serious_open_kind():
    badges = _badges(built([*KJ, SLIDE]), last_session=12)
    assert [(b.kind, b.scales, b.session, b.since) for b in badges] == [
        ("unrepaired", ("Total alliance",), 11, 8),  # not the subscales: their flags raised no alarm
        ("low_alliance", ("Total alliance",), 10, 8),
    ]  # the slide at session 4 is older than the attention window


def test_an_open_rupture_names_only_the_scales_that_raised_it():
    rows = [KJ[0], KJ[1]]
    (badge,) = _badges(built(rows), last_session=9)
    assert badge.kind == "rupture"
    assert badge.scales == ("Total alliance", "Goal and task agreement", "Goal agreement")


def test_the_card_tells_the_story_with_each_steps_explanation_and_rule():
    views = flag_views(built([*KJ, SLIDE]), last_held=12)
    assert len(views) == 3
    card = views[0]
    assert card.story and card.title == "Unrepaired rupture" and card.counts
    assert (card.start, card.last) == (8, 11)
    assert card.scales == [
        "Total alliance",
        "Goal and task agreement",
        "Task agreement",
        "Goal agreement",
        "Bond",
    ]
    assert card.steps[0].words == "dropped at session 8"
    assert [s.flag.scale for s in card.steps] == ["total"] * 4
    assert len(card.others) == 19


# Acknowledging a story --------------------------------------------------------------------------


@pytest.mark.django_db
def test_acknowledging_any_flag_of_a_story_acknowledges_the_story_and_undo_reopens_it(episode, alice):
    flags = stored(episode, [*KJ, SLIDE])
    goal_loss = next(f for f in flags if (f.kind, f.scale) == ("sudden_loss", "goal"))
    done = flag_acknowledge(flag=goal_loss, user=alice, acknowledgement="discussed", note="Talked it through")
    assert len(done) == 20
    state = dict(Flag.objects.filter(episode=episode).values_list("pk", "acknowledgement"))
    story = {f.pk for f in flags if f.kind not in ("low_alliance",) and f.session.number != 4}
    assert {pk for pk, ack in state.items() if ack} == story, "low alliance and the slide stay open"
    # Each flag's change is saved on its own: one audit entry per flag.
    changes = LogEntry.objects.filter(content_type__model="flag", action=LogEntry.Action.UPDATE)
    assert changes.count() == 20
    assert [b.kind for b in caseload_for_user(user=alice)[0].badges] == ["low_alliance"]

    undone = flag_unacknowledge(flag=flags[0], user=alice)
    assert len(undone) == 20
    assert not Flag.objects.filter(episode=episode).exclude(acknowledgement="").exists()
    assert [b.kind for b in caseload_for_user(user=alice)[0].badges] == ["unrepaired", "low_alliance"]
    assert flag_unacknowledge(flag=flags[0], user=alice) == []


@pytest.mark.django_db
def test_a_step_raised_after_the_acknowledgement_reopens_the_card(episode, alice):
    flags = stored(episode, KJ[:3])  # rupture, decline, sudden loss: not yet declared unrepaired
    flag_acknowledge(flag=flags[0], user=alice, acknowledgement="discussed")
    later = built(
        [KJ[3]],
        {f.session.number: f.session for f in flags} | {11: Session.objects.get(episode=episode, number=11)},
    )
    for f in later:
        f.episode = episode
        f.save()
    (card,) = flag_views(Flag.objects.filter(episode=episode).select_related("session"), last_held=12)
    assert not card.acknowledged and card.acknowledgement is not None and card.counts
    assert len(flag_acknowledge(flag=card.flag, user=alice, acknowledgement="not_relevant")) == 5
