"""Item scoring (methods.md section 1) and input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import (
    WAI_SR_SUBSCALES,
    AnalyticsInputError,
    analyse,
    check_scores,
    score_items,
    score_items_wide,
)
from monitoring.analytics import columns as c


def long_form(answers: dict[int, float], response: object = "r1") -> pd.DataFrame:
    return pd.DataFrame({"response": response, "item": list(answers), "value": list(answers.values())})


def test_wai_sr_structure_is_the_default() -> None:
    assert dict(WAI_SR_SUBSCALES) == {"task": (1, 2, 10, 12), "bond": (3, 5, 7, 9), "goal": (4, 6, 8, 11)}


def test_it_scores_subscales_and_total_as_item_means() -> None:
    answers = {i: v for i, v in zip(range(1, 13), [5, 4, 3, 2, 3, 2, 3, 2, 3, 5, 2, 4], strict=True)}
    row = score_items(long_form(answers)).iloc[0]
    assert row["task"] == pytest.approx((5 + 4 + 5 + 4) / 4)
    assert row["bond"] == pytest.approx(3.0)
    assert row["goal"] == pytest.approx(2.0)
    assert row["total"] == pytest.approx(sum(answers.values()) / 12)
    assert row["n_items"] == 12


def test_one_missing_item_is_prorated_two_make_the_subscale_missing_never_zero() -> None:
    answers = dict.fromkeys(range(1, 13), 4)
    del answers[1]  # task: 3 of 4
    row = score_items(long_form(answers)).iloc[0]
    assert row["task"] == 4.0 and row["total"] == 4.0
    del answers[2]  # task: 2 of 4 -> missing; total 10 of 12 still fine
    row = score_items(long_form(answers)).iloc[0]
    assert np.isnan(row["task"]) and row["total"] == 4.0
    del answers[3]  # total 9 of 12 -> missing
    row = score_items(long_form(answers)).iloc[0]
    assert np.isnan(row["total"]) and row["bond"] == 4.0


def test_reverse_keyed_items_are_turned_round() -> None:
    answers = dict.fromkeys(range(1, 13), 5)
    answers[3] = 1
    row = score_items(long_form(answers), reverse_keyed={3}).iloc[0]
    assert row["bond"] == 5.0


def test_several_responses_keep_their_order() -> None:
    frame = pd.concat(
        [long_form(dict.fromkeys(range(1, 13), 3), "b"), long_form(dict.fromkeys(range(1, 13), 5), "a")]
    )
    out = score_items(frame.sample(frac=1.0, random_state=1))
    assert set(out["response"]) == {"a", "b"}
    assert out.set_index("response").loc["a", "total"] == 5.0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (long_form({1: 6}), "between 1 and 5"),
        (long_form({13: 3}), "unknown item"),
        (pd.concat([long_form({1: 3}), long_form({1: 4})]), "answered twice"),
    ],
)
def test_bad_answers_are_refused(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(AnalyticsInputError, match=message):
        score_items(frame)


def test_wide_form_keeps_other_columns() -> None:
    wide = pd.DataFrame({"patient": ["p"], "session": [1], **{f"item_{i}": [4] for i in range(1, 13)}})
    wide.loc[0, "item_4"] = np.nan
    out = score_items_wide(wide)
    assert list(out.columns) == ["patient", "session", "task", "bond", "goal", "total"]
    assert out.loc[0, "goal"] == 4.0


def scores_frame(**overrides: list[object]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        c.PATIENT: ["a", "a", "b"],
        c.SESSION: [1, 2, 1],
        c.GOAL: [4.0, 4.0, 3.0],
        c.TASK: [4.0, 3.5, 3.0],
        c.BOND: [5.0, np.nan, 3.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("frame", "message", "rows"),
    [
        (scores_frame().drop(columns=[c.BOND]), "lacks column", []),
        (scores_frame(**{c.TASK: [4.0, 5.5, 3.0]}), "task must be between 1 and 5", [1]),
        (scores_frame(**{c.SESSION: [1, 1, 1]}), "more than once", [0, 1]),
        (scores_frame(**{c.SESSION: [1, 2.5, 1]}), "whole number", [1]),
        (scores_frame(**{c.PATIENT: ["a", None, "b"]}), "patient is missing", [1]),
    ],
)
def test_analyse_refuses_malformed_scores_naming_the_rows(
    frame: pd.DataFrame, message: str, rows: list[int]
) -> None:
    for check in (check_scores, analyse):
        with pytest.raises(AnalyticsInputError, match=message) as info:
            check(frame)
        assert info.value.rows == rows


def test_total_defaults_to_the_mean_of_the_three_subscales_and_needs_all_three() -> None:
    sessions = analyse(scores_frame()).sessions
    total = sessions[sessions[c.SCALE] == c.TOTAL].set_index([c.PATIENT, c.SESSION])[c.SCORE]
    assert total[("a", 1)] == pytest.approx(13 / 3)
    # Bond missing: no total (methods.md: a total needs 10 of 12 items; without a subscale at
    # most 9 can be behind it), never the mean of what is left.
    assert ("a", 2) not in total.index


def test_a_single_subscale_never_makes_a_total() -> None:
    frame = pd.DataFrame(
        {c.PATIENT: ["x"], c.SESSION: [1], c.GOAL: [np.nan], c.TASK: [np.nan], c.BOND: [2.0]}
    )
    levels = analyse(frame).levels
    assert set(levels[c.SCALE].astype(str)) == {c.BOND}


def test_a_given_total_is_respected_even_when_missing() -> None:
    frame = scores_frame(**{c.TOTAL: [4.0, np.nan, 3.0]})
    sessions = analyse(frame).sessions
    total = sessions[sessions[c.SCALE] == c.TOTAL]
    assert len(total) == 2  # the missing total is no row, not a zero


def test_agreement_needs_both_goal_and_task() -> None:
    frame = scores_frame(**{c.GOAL: [4.0, np.nan, 3.0]})
    sessions = analyse(frame).sessions
    agreement = sessions[sessions[c.SCALE] == c.AGREEMENT].set_index([c.PATIENT, c.SESSION])[c.SCORE]
    assert list(agreement.index) == [("a", 1), ("b", 1)]
    assert agreement[("a", 1)] == 4.0
