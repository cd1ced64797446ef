"""Plain-language sentences for flags and pattern labels, with the numbers behind them.

The wording is for a therapist between sessions: what happened, compared with what, and how sure.
Only numbers available at the flag's own session are used (the baseline, not the retrospective
level), so a stored sentence stays true later. Explanations are built for event rows only, which
are few, so a Python loop over them is fine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from monitoring.analytics.columns import (
    CORRECTIVE_EXPERIENCE,
    CRISIS,
    DECLINE,
    KINDS,
    REPAIR,
    RUPTURE,
    SCALE_LABELS,
    SCALES,
    SUDDEN_GAIN,
    SUDDEN_LOSS,
    UNREPAIRED,
)

_LABELS = [SCALE_LABELS[s] for s in SCALES]
_LOWER = [label[0].lower() + label[1:] for label in _LABELS]

#: The flattest slope reported as a number, in points per session on the 1-5 scale: over the
#: 5 sessions a decline's slope is fitted to, 0.05 per session is 0.2 points, about one
#: session-to-session variation of a steady patient. Flatter slopes are not worth a number
#: ("0.02 points per session" reads as precise noise): the sentence says the sessions stayed
#: below usual instead.
MIN_SLOPE = 0.05

#: How a decline was detected, as its sentence describes it. Every decline is raised by the
#: lower CUSUM (rule ``lower_cusum``); what made the sum cross its limit decides the words:
#: ``drop``, a rupture of the same scale inside the CUSUM run (the sum is mostly that drop and
#: the sessions after it); ``slope``, else a steady slide: the slope fitted over the last
#: ``slope_window`` sessions is at least ``MIN_SLOPE`` steep and its fall over those sessions
#: is at least half of how far the run's sessions are below usual on average (a step down
#: followed by a flat stretch is not a slide); ``cumulative``, else: sessions a little below
#: usual, not steadily falling, that added up.
DECLINE_SLOPE = "slope"
DECLINE_CUMULATIVE = "cumulative"
DECLINE_DROP = "drop"
_HOW = (DECLINE_SLOPE, DECLINE_CUMULATIVE, DECLINE_DROP)


def decline_detection_codes(
    *,
    slope: np.ndarray,
    slope_n: np.ndarray,
    rupture_session: np.ndarray,
    baseline: np.ndarray,
    window_mean: np.ndarray,
) -> np.ndarray:
    """Index into (slope, cumulative, drop) per row (see ``DECLINE_DROP``): ``rupture_session``
    is the decline's rupture inside its window (negative or NaN: none), ``slope`` the fitted
    slope in points per session over ``slope_n`` sessions, ``window_mean`` the mean score of
    the CUSUM run (NaN: unknown, the slope alone decides)."""

    def floats(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float)

    rupture = np.nan_to_num(floats(rupture_session), nan=-1.0) >= 0
    slope = floats(slope)
    with np.errstate(invalid="ignore"):
        fall = -slope * np.maximum(floats(slope_n) - 1, 0)
        below = floats(baseline) - floats(window_mean)
        steady = (slope <= -MIN_SLOPE) & ~(fall < 0.5 * below)  # NaN below: the slope decides
    return np.where(rupture, _HOW.index(DECLINE_DROP), np.where(steady, 0, _HOW.index(DECLINE_CUMULATIVE)))


def decline_detection(detail: Mapping[str, object], *, slope_window: int = 5) -> str:
    """How one decline was detected (``slope``, ``cumulative`` or ``drop``), from the numbers
    stored with it (``slope``, ``t``, ``rupture_session``, ``baseline``, ``mean_after``;
    missing ones count as unknown) and the configuration's ``slope_window`` (the slope is
    fitted over ``min(t, slope_window)`` sessions); see ``DECLINE_DROP``."""

    def number(key: str) -> np.ndarray:
        value = detail.get(key)
        try:
            return np.array([np.nan if value is None else float(value)])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return np.array([np.nan])

    code = decline_detection_codes(
        slope=number("slope"),
        slope_n=np.minimum(number("t"), slope_window),
        rupture_session=number("rupture_session"),
        baseline=number("baseline"),
        window_mean=number("mean_after"),
    )
    return _HOW[int(code[0])]


def _pace(slope: float, window: int) -> str:
    """A pattern's trend in words: the slope as a number only when it is at least ``MIN_SLOPE``."""
    if abs(slope) >= MIN_SLOPE:
        return f"about {slope:+.2f} points per session over the last {window} sessions"
    return f"slowly, but steadily over the last {window} sessions"


def _drop_sentence(label: str, first: int, rupture: int, last: int, score: str, usual: str) -> str:
    """A decline that comes from a rupture inside its window (not repaired since): the window
    starts at ``first``, the rupture is at ``rupture``, the decline at ``last``."""
    before = f"after sessions a little below usual from session {first} on, " if first < rupture else ""
    if rupture == last:
        return (
            f"{label} dropped at this session to {score} (a rupture; usual level {usual}), "
            f"{before}and the sum of sessions below usual crossed its limit. This decline comes "
            f"from that drop, not from a slow slide."
        )
    return (
        f"{label} dropped at session {rupture} (a rupture) and has stayed below this patient's "
        f"usual level ({usual}) since (now {score}). This decline comes from that drop"
        + (f", on top of sessions a little below usual from session {first} on, " if before else ", ")
        + "not from a slow slide."
    )


def _since(first: int, last: int) -> str:
    return f"since session {first}" if first < last else f"at session {last}"


_TABLES: dict[int, np.ndarray] = {}
_TABLE_RANGE = 10  # values in [-10, 10] are looked up; others are formatted one by one


def _fmt(values: np.ndarray, decimals: int) -> np.ndarray:
    """``values`` as strings with ``decimals`` decimals (object array).

    Scores, levels and spreads live in a small range, so the strings come from a lookup table;
    formatting hundreds of thousands of floats one by one would dominate a cohort analysis.
    """
    step = 10**decimals
    table = _TABLES.get(decimals)
    if table is None:
        lo = -_TABLE_RANGE * step
        table = np.array([f"{i / step:.{decimals}f}" for i in range(lo, -lo + 1)], dtype=object)
        _TABLES[decimals] = table
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        idx = np.rint(values * step)
        ok = np.isfinite(idx) & (np.abs(idx) <= _TABLE_RANGE * step)
    out = np.empty(values.size, dtype=object)
    out[ok] = table[(idx[ok] + _TABLE_RANGE * step).astype(np.int64)]
    for i in np.flatnonzero(~ok):
        out[i] = f"{values[i]:.{decimals}f}"
    return out


def _distinct(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with distinct key tuples: (index of one row per distinct tuple, inverse map).

    The keys are the displayed (rounded) numbers of a sentence, so rows with equal keys get
    the same sentence: each distinct sentence is formatted once (at a clinic's scale, hundreds
    of thousands of flags share a few tens of thousands of sentences)."""
    cols = [np.nan_to_num(np.asarray(k, dtype=float), nan=-1e6).astype(np.int64) for k in keys]
    packed = cols[0] - cols[0].min()
    bits = int(packed.max()).bit_length() if packed.size else 0
    for col in cols[1:]:
        col = col - col.min()
        width = max(int(col.max()).bit_length(), 1) if col.size else 1
        bits += width
        if bits > 62:  # too wide to pack into one integer: compare the rows themselves
            _, first, inverse = np.unique(
                np.column_stack(cols), axis=0, return_index=True, return_inverse=True
            )
            return first, inverse.reshape(-1)
        packed = (packed << width) | col
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    return first, inverse


def _r(values: np.ndarray, decimals: int) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=float) * 10**decimals)


def explain_event_codes(
    *,
    kind: np.ndarray,
    scale: np.ndarray,
    rule_previous: np.ndarray,
    session: np.ndarray,
    score: np.ndarray,
    magnitude: np.ndarray,
    threshold: np.ndarray,
    baseline: np.ndarray,
    s_used: np.ndarray,
    k: float,
    rupture_session: np.ndarray,
    sessions_since: np.ndarray,
    from_session: np.ndarray,
    to_session: np.ndarray,
    mean_before: np.ndarray,
    mean_after: np.ndarray,
    slope: np.ndarray,
    slope_n: np.ndarray,
    drop_repaired: np.ndarray | None = None,
    tolerance: float = 1.0,
    n_baseline: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """One sentence per event row, as ``(codes, sentences)``: row i's sentence is
    ``sentences[codes[i]]`` (-1: none); the arguments are parallel arrays (kind and scale as codes). The distinct
    sentences are few, so a caller can build a string column from them without one Python
    string per row."""
    codes = np.full(kind.size, -1, dtype=np.int64)
    sentences: list[str] = []
    if kind.size == 0:
        return codes, sentences
    labels = np.array(_LABELS, dtype=object)
    lowers = np.array(_LOWER, dtype=object)
    target = baseline - tolerance * s_used
    if n_baseline is None:
        n_baseline = np.zeros(kind.size)
    n_baseline = np.nan_to_num(np.asarray(n_baseline, dtype=float), nan=0.0)

    def rows(code: str, extra: np.ndarray | None = None) -> np.ndarray:
        mask = kind == KINDS.index(code)
        if extra is not None:
            mask &= extra
        return np.flatnonzero(mask)

    def fill(i: np.ndarray, keys: list[np.ndarray], build: Callable[[np.ndarray], list[str]]) -> None:
        if not i.size:
            return
        first, inverse = _distinct(*[key[i] for key in keys])
        codes[i] = len(sentences) + inverse
        sentences.extend(build(i[first]))

    bound = baseline - threshold  # the score at or below which a session is a rupture
    fill(
        rows(RUPTURE, ~rule_previous),
        [scale, _r(score, 1), _r(magnitude, 1), _r(baseline, 1), n_baseline, _r(bound, 2), _r(s_used, 2)],
        lambda j: [
            f"{lab} was {v}, {m} points below this patient's usual level ({b}, from {n} sessions), "
            f"at or below {bd}: lower than their usual session-to-session variation ({sd} points) "
            f"makes likely by chance."
            for lab, v, m, b, n, bd, sd in zip(
                labels[scale[j]],
                _fmt(score[j], 1),
                _fmt(magnitude[j], 1),
                _fmt(baseline[j], 1),
                n_baseline[j].astype(int).tolist(),
                _fmt(bound[j], 2),
                _fmt(s_used[j], 2),
                strict=True,
            )
        ],
    )
    fill(
        rows(RUPTURE, rule_previous),
        [scale, _r(magnitude, 1), _r(score, 1), _r(threshold, 2)],
        lambda j: [
            f"{lab} fell {m} points since the previous session, to {v}. There are not yet enough "
            f"sessions to know this patient's usual level, and a drop this size (at least {th}) "
            f"is more than measurement noise."
            for lab, m, v, th in zip(
                labels[scale[j]], _fmt(magnitude[j], 1), _fmt(score[j], 1), _fmt(threshold[j], 2), strict=True
            )
        ],
    )
    fill(
        rows(REPAIR),
        [scale, _r(score, 1), _r(target, 1), rupture_session],
        lambda j: [
            f"Back to usual: {low} {v}, within this patient's usual range ({tg} or more) after "
            f"the drop at session {rs}."
            for low, v, tg, rs in zip(
                lowers[scale[j]],
                _fmt(score[j], 1),
                _fmt(target[j], 1),
                rupture_session[j].tolist(),
                strict=True,
            )
        ],
    )
    fill(
        rows(UNREPAIRED),
        [scale, sessions_since, rupture_session, _r(score, 1), _r(magnitude, 1), _r(baseline, 1)],
        lambda j: [
            f"Not back to usual {n} sessions after the drop at session {rs}: {low} {v}, still {m} "
            f"points below the earlier usual level ({b}). From here on this is taken as the "
            f"patient's new level."
            for n, rs, low, v, m, b in zip(
                sessions_since[j].tolist(),
                rupture_session[j].tolist(),
                lowers[scale[j]],
                _fmt(score[j], 1),
                _fmt(magnitude[j], 1),
                _fmt(baseline[j], 1),
                strict=True,
            )
        ],
    )
    how = decline_detection_codes(
        slope=slope,
        slope_n=slope_n,
        rupture_session=rupture_session,
        baseline=baseline,
        window_mean=mean_after,
    )
    window_from = np.where(from_session >= 0, from_session, session)
    fill(
        rows(DECLINE, how == _HOW.index(DECLINE_SLOPE)),
        [scale, _r(-slope, 2), slope_n, _r(score, 1), _r(baseline, 1)],
        lambda j: [
            f"{lab} has fallen about {p} points per session over the last {sn} sessions (now {v}; "
            f"usual level {b}): a steady slide, small drops that no single session shows."
            for lab, p, sn, v, b in zip(
                labels[scale[j]],
                _fmt(-slope[j], 2),
                slope_n[j].tolist(),
                _fmt(score[j], 1),
                _fmt(baseline[j], 1),
                strict=True,
            )
        ],
    )
    fill(
        rows(DECLINE, how == _HOW.index(DECLINE_CUMULATIVE)),
        [scale, window_from, session, _r(mean_after, 1), _r(score, 1), _r(baseline, 1)],
        lambda j: [
            f"{lab} has been below this patient's usual level ({b}) {_since(a, t)} (mean {m}, now "
            f"{v}), without a steady fall: no single session stands out, but together they are "
            f"lower than the patient's usual session-to-session variation makes likely."
            for lab, a, t, m, v, b in zip(
                labels[scale[j]],
                window_from[j].tolist(),
                session[j].tolist(),
                _fmt(mean_after[j], 1),
                _fmt(score[j], 1),
                _fmt(baseline[j], 1),
                strict=True,
            )
        ],
    )
    if drop_repaired is None:
        drop_repaired = np.zeros(kind.size, dtype=bool)
    drop = how == _HOW.index(DECLINE_DROP)
    fill(
        rows(DECLINE, drop & ~drop_repaired),
        [scale, window_from, rupture_session, session, _r(score, 1), _r(baseline, 1)],
        lambda j: [
            _drop_sentence(lab, a, rs, t, v, b)
            for lab, a, rs, t, v, b in zip(
                labels[scale[j]],
                window_from[j].tolist(),
                rupture_session[j].tolist(),
                session[j].tolist(),
                _fmt(score[j], 1),
                _fmt(baseline[j], 1),
                strict=True,
            )
        ],
    )
    fill(
        rows(DECLINE, drop & drop_repaired),
        [scale, rupture_session, _r(score, 1), _r(baseline, 1)],
        lambda j: [
            f"{lab} came back after the drop at session {rs} (a rupture), but the sessions since "
            f"have been a little below this patient's usual level ({b}; now {v}). That drop and "
            f"these slightly low sessions add up to a decline; it does not come from a slow slide."
            for lab, rs, v, b in zip(
                labels[scale[j]],
                rupture_session[j].tolist(),
                _fmt(score[j], 1),
                _fmt(baseline[j], 1),
                strict=True,
            )
        ],
    )
    for code, verb, where in ((SUDDEN_GAIN, "rose", "up"), (SUDDEN_LOSS, "fell", "down")):
        head = "Sudden gain" if code == SUDDEN_GAIN else "Sudden loss"
        fill(
            rows(code),
            [scale, _r(magnitude, 1), from_session, to_session, _r(mean_before, 1), _r(mean_after, 1)],
            lambda j, head=head, verb=verb, where=where: [  # type: ignore[misc]
                f"{head}: {low} {verb} {m} points between sessions {fs} and {ts} and stayed "
                f"{where} (mean {b} before, {a} after)."
                for low, m, fs, ts, b, a in zip(
                    lowers[scale[j]],
                    _fmt(magnitude[j], 1),
                    from_session[j].tolist(),
                    to_session[j].tolist(),
                    _fmt(mean_before[j], 1),
                    _fmt(mean_after[j], 1),
                    strict=True,
                )
            ],
        )
    return codes, sentences


def explain_patterns(
    *,
    pattern: Sequence[str],
    scale: str,
    level: np.ndarray,
    q_low: float,
    q_high: float,
    trend: np.ndarray,
    window_n: np.ndarray,
    open_rupture: np.ndarray,
) -> list[str]:
    """Sentence per patient for the pattern labels (prompts, worded as such)."""
    lower = SCALE_LABELS[scale][0].lower() + SCALE_LABELS[scale][1:]
    out: list[str] = []
    for pat, lev, tr, wn, op in zip(
        pattern,
        level.tolist(),
        trend.tolist(),
        window_n.tolist(),
        open_rupture.tolist(),
        strict=True,
    ):
        if pat == CORRECTIVE_EXPERIENCE:
            out.append(
                f"Possible corrective experience: {lower} started low for this clinic (level {lev:.1f}, "
                f"lowest quarter, below {q_low:.1f}) and has been rising ({_pace(tr, wn)}). A prompt "
                f"to reflect on, not a finding."
            )
        elif pat == CRISIS:
            reasons = []
            if tr == tr and tr < 0:
                reasons.append(f"has been falling ({_pace(tr, wn)})")
            if op:
                reasons.append("has a rupture that is not repaired")
            why = " and ".join(reasons) or "is falling"
            out.append(
                f"Possible crisis, in or outside therapy: {lower} was high for this clinic "
                f"(level {lev:.1f}, top quarter, above {q_high:.1f}) but {why}. Worth exploring "
                f"with the patient."
            )
        else:
            out.append("")
    return out
