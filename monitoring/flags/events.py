"""Stored flags grouped into events: one story per rupture, one card per event.

A rupture is usually seen on several scales at once, and the analysis raises more flags about it
as later sessions come in: the sudden loss confirmed two sessions later (its jump ends at the
rupture's session), the repair or the unrepaired rupture at the end of the repair window (their
``rupture_session``), and a decline whose run the rupture's drop set off (its ``rupture_session``,
kept when a rupture on the same scale falls inside the decline's window). Those flags tell ONE
story and are shown, acknowledged and counted as one event. Every other flag is an event of its
own kind at its session (a decline with no rupture, an alliance that has stayed low, a sudden
gain), seen on as many scales as raised it.

Functions on Flag rows (their ``session.number``, ``kind``, ``scale``, ``detail``, ``alarm`` and
acknowledgement), with no query, so the patient page, the PDF, the API, the caseload and the
acknowledgement share one grouping. docs/methods.md ("Flags grouped into events") describes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring.flags import wording
from monitoring.flags.selectors import counts_for_attention

if TYPE_CHECKING:
    from monitoring.models import Flag

#: The kinds a rupture's story can hold, in the order its steps are told.
STORY_ORDER = ("rupture", "sudden_loss", "repair", "unrepaired", "decline")

#: Which scale's flag speaks for a step seen on several scales at once: the total first. A decline
#: on its own card keeps task agreement first (its within-patient changes predict outcome best in
#: structured treatments; docs/methods.md 4.3).
HEADLINE_ORDER = {"decline": ("task", "agreement", "total", "goal", "bond")}
DEFAULT_HEADLINE_ORDER = ("total", "agreement", "task", "goal", "bond")


@dataclass(frozen=True)
class Step:
    """One kind of flag at one session within an event, on one or more scales."""

    kind: str
    session: int
    flags: tuple[Flag, ...]  # the headline scale first

    @property
    def head(self) -> Flag:
        return self.flags[0]

    @property
    def words(self) -> str:
        """The step in plain words, as part of its story ("not back by session 11")."""
        detail = self.head.detail or {}
        if self.kind == "rupture":
            return f"dropped at session {self.session}"
        if self.kind == "sudden_loss":
            start, end = _int(detail.get("from_session")), _int(detail.get("to_session"))
            if start is not None and end is not None:
                return f"a sudden loss from session {start} to {end} (confirmed at session {self.session})"
            return f"a sudden loss (confirmed at session {self.session})"
        if self.kind == "repair":
            return f"back by session {self.session}"
        if self.kind == "unrepaired":
            return f"not back by session {self.session}"
        if self.kind == "decline":
            return f"a decline followed (flagged at session {self.session})"
        return f"{wording.FLAGS[self.kind].short.lower()} at session {self.session}"


@dataclass(frozen=True)
class Event:
    """A rupture's story, or a flag kind at a session on its own: what one card shows."""

    steps: tuple[Step, ...]
    start: int  # where it began: the rupture's session, a low run's first session, else the flag's

    @property
    def story(self) -> bool:
        """A rupture and what followed it (not a flag kind on its own)."""
        return any(s.kind in ("rupture", "repair", "unrepaired") for s in self.steps)

    @property
    def flags(self) -> list[Flag]:
        return [f for step in self.steps for f in step.flags]

    @property
    def kind(self) -> str:
        """The most serious kind in the event (an unrepaired rupture before the rupture itself)."""
        return min(
            (s.kind for s in self.steps), key=lambda k: (wording.PRIORITY.get(k, wording.NO_PRIORITY), k)
        )

    @property
    def head_step(self) -> Step:
        return next(s for s in self.steps if s.kind == self.kind)

    @property
    def head(self) -> Flag:
        """The flag that speaks for the event (its card's anchor and its acknowledgement form):
        the total's flag of the event's most serious kind."""
        return self.head_step.head

    @property
    def session(self) -> int:
        """The latest session of the event (where its newest step was raised)."""
        return max(s.session for s in self.steps)

    @property
    def scales(self) -> list[str]:
        """The scales the event's flags covered, total first."""
        return scale_order({f.scale for f in self.flags})

    @property
    def told(self) -> str:
        """Its steps in plain words: "dropped at session 8; not back by session 11; a decline
        followed (flagged at session 9)"."""
        return "; ".join(s.words for s in self.steps)

    @property
    def acknowledged(self) -> bool:
        return all(f.acknowledgement for f in self.flags)

    def scales_of(self, kind: str) -> list[str]:
        return scale_order({f.scale for f in self.flags if f.kind == kind})


def flag_events(flags: Iterable[Flag]) -> list[Event]:
    """Group an episode's flags into events, the newest first (by where each began, then the
    most serious kind first)."""
    flags = list(flags)
    anchors = {f.session.number for f in flags if f.kind == "rupture"}
    anchors |= {
        r
        for f in flags
        if f.kind in ("repair", "unrepaired") and (r := _int(f.detail.get("rupture_session")))
    }
    stories: dict[int, list[Flag]] = {}
    alone: dict[tuple[int, str], list[Flag]] = {}
    for f in flags:
        anchor = _story_of(f, anchors)
        if anchor is not None:
            stories.setdefault(anchor, []).append(f)
        else:
            alone.setdefault((f.session.number, f.kind), []).append(f)
    events = [
        Event(steps=_steps(group, order=DEFAULT_HEADLINE_ORDER), start=a) for a, group in stories.items()
    ]
    for (number, kind), group in alone.items():
        steps = _steps(group, order=HEADLINE_ORDER.get(kind, DEFAULT_HEADLINE_ORDER))
        start = _int(group[0].detail.get("from_session")) if kind == "low_alliance" else None
        events.append(Event(steps=steps, start=start or number))
    events.sort(key=lambda e: (-e.start, -e.session, wording.PRIORITY.get(e.kind, wording.NO_PRIORITY)))
    return events


def event_of(flag: Flag, flags: Iterable[Flag]) -> Event:
    """The event a flag belongs to, among its episode's flags (which include it)."""
    for event in flag_events(flags):
        if any(f is flag or (f.pk is not None and f.pk == flag.pk) for f in event.flags):
            return event
    return Event(
        steps=(Step(kind=flag.kind, session=flag.session.number, flags=(flag,)),), start=flag.session.number
    )


def _story_of(flag: Flag, anchors: set[int]) -> int | None:
    """The rupture session whose story the flag is part of, or None."""
    detail = flag.detail or {}
    if flag.kind == "rupture":
        return flag.session.number
    if flag.kind in ("repair", "unrepaired", "decline"):
        rupture = _int(detail.get("rupture_session"))
        return rupture if rupture in anchors else None
    if flag.kind == "sudden_loss":
        end = _int(detail.get("to_session"))
        return end if end in anchors else None
    return None


def _steps(flags: list[Flag], *, order: tuple[str, ...]) -> tuple[Step, ...]:
    by_step: dict[tuple[str, int], list[Flag]] = {}
    for f in flags:
        by_step.setdefault((f.kind, f.session.number), []).append(f)
    steps = []
    for (kind, number), group in by_step.items():
        group.sort(key=lambda f: order.index(f.scale) if f.scale in order else len(order))
        steps.append(Step(kind=kind, session=number, flags=tuple(group)))
    rank = {k: i for i, k in enumerate(STORY_ORDER)}
    steps.sort(key=lambda s: (rank.get(s.kind, len(rank)), s.session))
    return tuple(steps)


def scale_order(scales: set[str]) -> list[str]:
    """Scale codes, the total first, then the subscales in the order of a headline."""
    known = [s for s in DEFAULT_HEADLINE_ORDER if s in scales]
    return known + sorted(scales - set(known))


def _int(value: object) -> int | None:
    try:
        return None if value is None else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def open_flags(event: Event, *, last_held: int) -> list[Flag]:
    """The event's flags that still put the patient on the caseload (``counts_for_attention``),
    except a rupture whose story has reached its repair or its unrepaired step: that step says
    what became of it (an unrepaired rupture counts in its own right)."""
    closed = any(s.kind in ("repair", "unrepaired") for s in event.steps)
    return [
        f
        for f in event.flags
        if not (f.kind == "rupture" and closed)
        and counts_for_attention(
            kind=f.kind,
            session=f.session.number,
            acknowledged=bool(f.acknowledgement),
            last_held=last_held,
            alarm=f.alarm,
        )
    ]


def low_alliance_rows(flags: Iterable[Flag]) -> list[dict[str, object]]:
    """The stored "alliance has stayed low" flags as chart event rows (``session, scale, kind,
    score, explanation, from_session, to_session``): they are stored flags only, not in the
    analysis's events, so the charts get them from here (``charts.trajectory(low_alliance=...)``)."""
    return [
        {
            "session": f.session.number,
            "scale": f.scale,
            "kind": f.kind,
            "score": f.detail.get("score"),
            "explanation": f.explanation,
            "from_session": f.detail.get("from_session"),
            "to_session": f.detail.get("to_session"),
        }
        for f in flags
        if f.kind == "low_alliance"
    ]
