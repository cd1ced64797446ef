"""Item answers -> subscale and total scores; checking a scores frame before analysis.

Scoring follows methods.md section 1: a subscale score is the mean of its items, the total the
mean of all items. For imported or partial data a subscale may miss at most one of its items and
the total at most two of twelve (prorated mean of the answered items); otherwise the score is
missing (NaN), never zero. Reverse-keyed items are turned round as ``min + max - value``.
The default structure is the WAI-SR's (Hatcher & Gillaspy 2006): task items 1, 2, 10, 12; bond
3, 5, 7, 9; goal 4, 6, 8, 11; answers 1-5.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics.columns import BOND, GOAL, PATIENT, SESSION, SUBSCALES, TASK, TOTAL

#: WAI-SR subscale -> item numbers (Hatcher & Gillaspy 2006), all positively keyed.
WAI_SR_SUBSCALES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        TASK: (1, 2, 10, 12),
        BOND: (3, 5, 7, 9),
        GOAL: (4, 6, 8, 11),
    }
)
WAI_SR_ITEMS: tuple[int, ...] = tuple(range(1, 13))
SCALE_MIN = 1
SCALE_MAX = 5
#: Unanswered items a score may have and still be computed (prorated), methods.md section 1:
#: a subscale may miss one of its four items, the total two of twelve.
MAX_MISSING_SUBSCALE = 1
MAX_MISSING_TOTAL = 2

# Long-form item columns (one row per answer), as the Django side stores Answer rows.
RESPONSE = "response"
ITEM = "item"
VALUE = "value"
ITEM_PREFIX = "item_"


class AnalyticsInputError(ValueError):
    """A scores or items frame the analytics cannot use; ``rows`` names the offending rows.

    ``rows`` holds index labels of the input frame (for a CSV read with the default index,
    the CSV line is ``label + 2``).
    """

    def __init__(self, message: str, *, rows: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.rows = list(rows)


def _describe_rows(labels: Sequence[object], limit: int = 10) -> str:
    shown = ", ".join(str(label) for label in labels[:limit])
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return f"{shown}{more}"


def _score_dense(
    values: np.ndarray,
    *,
    item_numbers: Sequence[int],
    subscales: Mapping[str, Sequence[int]],
    max_missing_subscale: int,
    max_missing_total: int,
) -> dict[str, np.ndarray]:
    """Scores from a dense (responses x items) array with NaN for unanswered items."""
    position = {number: i for i, number in enumerate(item_numbers)}
    answered = ~np.isnan(values)
    filled = np.where(answered, values, 0.0)
    out: dict[str, np.ndarray] = {}
    all_items: list[int] = []
    for name, numbers in subscales.items():
        cols = [position[number] for number in numbers]
        all_items.extend(cols)
        count = answered[:, cols].sum(axis=1)
        total = filled[:, cols].sum(axis=1)
        ok = count >= len(cols) - max_missing_subscale
        out[name] = np.where(ok, total / np.maximum(count, 1), np.nan)
    cols = sorted(set(all_items))
    count = answered[:, cols].sum(axis=1)
    ok = count >= len(cols) - max_missing_total
    out[TOTAL] = np.where(ok, filled[:, cols].sum(axis=1) / np.maximum(count, 1), np.nan)
    return out


def _check_values(
    values: np.ndarray,
    labels: Sequence[object],
    *,
    scale_min: float,
    scale_max: float,
) -> None:
    bad = ~np.isnan(values) & ((values < scale_min) | (values > scale_max))
    if bad.any():
        rows = [labels[int(i)] for i in np.flatnonzero(bad.any(axis=1) if bad.ndim == 2 else bad)]
        raise AnalyticsInputError(
            f"item answers must be between {scale_min:g} and {scale_max:g}; rows {_describe_rows(rows)}",
            rows=rows,
        )


def _reverse(
    values: np.ndarray,
    item_numbers: Sequence[int],
    reverse_keyed: Collection[int],
    scale_min: float,
    scale_max: float,
) -> np.ndarray:
    if not reverse_keyed:
        return values
    values = values.copy()
    cols = [i for i, number in enumerate(item_numbers) if number in reverse_keyed]
    values[:, cols] = scale_min + scale_max - values[:, cols]
    return values


def score_items(
    items: pd.DataFrame,
    *,
    subscales: Mapping[str, Sequence[int]] = WAI_SR_SUBSCALES,
    reverse_keyed: Collection[int] = frozenset(),
    scale_min: float = SCALE_MIN,
    scale_max: float = SCALE_MAX,
    max_missing_subscale: int = MAX_MISSING_SUBSCALE,
    max_missing_total: int = MAX_MISSING_TOTAL,
) -> pd.DataFrame:
    """Score long-form answers: one input row per (``response``, ``item``, ``value``).

    Returns one row per response (in order of first appearance) with the columns ``response``,
    one column per subscale (``goal``, ``task``, ``bond`` for the WAI-SR), ``total`` and
    ``n_items`` (answered items). A subscale with more than ``max_missing_subscale`` unanswered
    items, or a total with more than ``max_missing_total``, is NaN (methods.md section 1).
    Reverse-keyed item numbers are scored ``scale_min + scale_max - value``.

    Raises :class:`AnalyticsInputError` for an unknown item number, a value outside the scale or
    the same item answered twice in one response.
    """
    missing = {RESPONSE, ITEM, VALUE} - set(items.columns)
    if missing:
        raise AnalyticsInputError(f"items frame lacks column(s) {sorted(missing)}")
    item_numbers = sorted({number for numbers in subscales.values() for number in numbers})
    codes, responses = pd.factorize(items[RESPONSE], sort=False)
    item = items[ITEM].to_numpy()
    value = items[VALUE].to_numpy(dtype=float, na_value=np.nan)
    labels = list(items.index)
    col = pd.Index(item_numbers).get_indexer(item)
    if (col < 0).any():
        rows = [labels[i] for i in np.flatnonzero(col < 0)]
        raise AnalyticsInputError(
            f"unknown item number(s) in rows {_describe_rows(rows)}",
            rows=rows,
        )
    _check_values(value, labels, scale_min=scale_min, scale_max=scale_max)
    key = codes.astype(np.int64) * len(item_numbers) + col
    dup = pd.Series(key).duplicated(keep=False).to_numpy()
    if dup.any():
        rows = [labels[i] for i in np.flatnonzero(dup)]
        raise AnalyticsInputError(
            f"an item is answered twice in one response; rows {_describe_rows(rows)}",
            rows=rows,
        )
    dense = np.full((len(responses), len(item_numbers)), np.nan)
    dense[codes, col] = value
    dense = _reverse(dense, item_numbers, reverse_keyed, scale_min, scale_max)
    scores = _score_dense(
        dense,
        item_numbers=item_numbers,
        subscales=subscales,
        max_missing_subscale=max_missing_subscale,
        max_missing_total=max_missing_total,
    )
    frame = pd.DataFrame({RESPONSE: responses, **scores})
    frame["n_items"] = (~np.isnan(dense)).sum(axis=1)
    return frame


def score_items_wide(
    items: pd.DataFrame,
    *,
    subscales: Mapping[str, Sequence[int]] = WAI_SR_SUBSCALES,
    reverse_keyed: Collection[int] = frozenset(),
    scale_min: float = SCALE_MIN,
    scale_max: float = SCALE_MAX,
    max_missing_subscale: int = MAX_MISSING_SUBSCALE,
    max_missing_total: int = MAX_MISSING_TOTAL,
    prefix: str = ITEM_PREFIX,
) -> pd.DataFrame:
    """Score wide-form answers: one row per response with columns ``item_1`` .. ``item_12``.

    Returns the input's other columns (e.g. ``patient``, ``session``) followed by the subscale
    columns and ``total``; same rules as :func:`score_items`.
    """
    item_numbers = sorted({number for numbers in subscales.values() for number in numbers})
    names = [f"{prefix}{number}" for number in item_numbers]
    missing = [name for name in names if name not in items.columns]
    if missing:
        raise AnalyticsInputError(f"items frame lacks column(s) {missing}")
    dense = items[names].to_numpy(dtype=float, na_value=np.nan)
    _check_values(dense, list(items.index), scale_min=scale_min, scale_max=scale_max)
    dense = _reverse(dense, item_numbers, reverse_keyed, scale_min, scale_max)
    scores = _score_dense(
        dense,
        item_numbers=item_numbers,
        subscales=subscales,
        max_missing_subscale=max_missing_subscale,
        max_missing_total=max_missing_total,
    )
    rest = items.drop(columns=[c for c in items.columns if c in names]).reset_index(drop=True)
    return pd.concat([rest, pd.DataFrame(scores)], axis=1)


def score_arrays(
    scores: pd.DataFrame,
    *,
    scale_min: float = SCALE_MIN,
    scale_max: float = SCALE_MAX,
) -> dict[str, np.ndarray]:
    """The checked numeric columns of a scores frame: ``session`` and every score column, as
    float arrays (NaN = missing). Raises :class:`AnalyticsInputError` for a missing column, a
    session that is not a whole number, or a score off the scale; used by :func:`check_scores`
    and ``analyse`` so the columns are converted once."""
    required = [PATIENT, SESSION, *SUBSCALES]
    missing = [c for c in required if c not in scores.columns]
    if missing:
        raise AnalyticsInputError(f"scores frame lacks column(s) {missing}")
    labels = scores.index
    out: dict[str, np.ndarray] = {}
    try:
        session = scores[SESSION].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        session_num = pd.to_numeric(scores[SESSION], errors="coerce").to_numpy(dtype=float)
        rows = list(labels[np.isnan(session_num)])
        raise AnalyticsInputError(
            f"session must be a whole number; rows {_describe_rows(rows)}",
            rows=rows,
        ) from None
    bad = np.isnan(session) | (session != np.round(session))
    if bad.any():
        rows = list(labels[bad])
        raise AnalyticsInputError(
            f"session must be a whole number; rows {_describe_rows(rows)}",
            rows=rows,
        )
    out[SESSION] = session
    columns = [*SUBSCALES, *([TOTAL] if TOTAL in scores.columns else [])]
    for column in columns:
        try:
            values = scores[column].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            coerced = pd.to_numeric(scores[column], errors="coerce")
            rows = list(labels[coerced.isna().to_numpy() & scores[column].notna().to_numpy()])
            raise AnalyticsInputError(
                f"{column} must be a number; rows {_describe_rows(rows)}",
                rows=rows,
            ) from None
        with np.errstate(invalid="ignore"):
            out_of_scale = (values < scale_min) | (values > scale_max)
        if out_of_scale.any():
            rows = list(labels[out_of_scale])
            raise AnalyticsInputError(
                f"{column} must be between {scale_min:g} and {scale_max:g}; rows {_describe_rows(rows)}",
                rows=rows,
            )
        out[column] = values
    return out


def missing_patient_error(scores: pd.DataFrame, missing: np.ndarray) -> AnalyticsInputError:
    """The error for rows whose patient is missing (``missing`` is a boolean mask)."""
    rows = list(scores.index[missing])
    return AnalyticsInputError(f"patient is missing in rows {_describe_rows(rows)}", rows=rows)


def check_scores(
    scores: pd.DataFrame,
    *,
    scale_min: float = SCALE_MIN,
    scale_max: float = SCALE_MAX,
) -> None:
    """Raise :class:`AnalyticsInputError` unless ``scores`` is usable by ``analyse``.

    Checks: the columns ``patient``, ``session``, ``goal``, ``task``, ``bond`` exist; sessions
    are whole numbers; no patient is missing; every score (and ``total`` if given) is NaN or on
    the scale; no (patient, session) pair appears twice. Error messages name the rows by index
    label (``AnalyticsInputError.rows``).
    """
    score_arrays(scores, scale_min=scale_min, scale_max=scale_max)
    missing = scores[PATIENT].isna().to_numpy()
    if missing.any():
        raise missing_patient_error(scores, missing)
    dup = scores.duplicated([PATIENT, SESSION], keep=False).to_numpy()
    if dup.any():
        rows = list(scores.index[dup])
        raise AnalyticsInputError(
            f"the same patient and session appear more than once; rows {_describe_rows(rows)}",
            rows=rows,
        )
