"""Every number a flag's explanation prints, recomputed from the analysis output it was built from.

"How was this decided?" (wording.rule_text) and the stored sentence (analytics.explain) must print
the score each rule compared with: a rupture's bound is ``baseline - threshold`` (the analysis
stores the drop it allows), a repair's target ``baseline - tolerance * s_used``, a low alliance's
the clinic's cut-off. Each sentence is parsed and its numbers are checked against the event row
and against the decision itself (the score really is at or below the printed bound, ...).
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from monitoring.analytics import AnalysisConfig, analyse
from monitoring.analytics.absolute import detect_low_alliance
from monitoring.analytics.simulate import simulate_cohort
from monitoring.flags.wording import COMPARED, rule_text, score_bound, threshold_compared

NUMBER = r"(-?\d+(?:\.\d+)?)"


@pytest.fixture(scope="module")
def analysis():
    cohort = simulate_cohort(160, seed=3)
    return analyse(cohort.scores, AnalysisConfig())


@pytest.fixture(scope="module")
def events(analysis) -> pd.DataFrame:
    low = detect_low_alliance(analysis.sessions, cutoff=3.0, run=3)
    assert len(low), "the cohort needs a persistently low patient"
    frame = pd.concat([analysis.events.astype({"kind": str, "scale": str}), low], ignore_index=True)
    return frame


def detail(row: dict[str, object]) -> dict[str, object]:
    keep = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    return {**keep, "repair_tolerance": 1.0}


def text(row: dict[str, object]) -> str:
    return rule_text(
        rule=str(row["rule"]), scale=str(row["scale"]), detail=detail(row), threshold=row["threshold"]
    )  # type: ignore[arg-type]


def numbers(pattern: str, sentence: str) -> tuple[float, ...]:
    found = re.search(pattern, sentence)
    assert found, (pattern, sentence)
    return tuple(float(g) for g in found.groups())


def close(printed: float, value: float, decimals: int) -> bool:
    return abs(printed - value) <= 0.5 * 10**-decimals + 1e-9


def test_every_rule_of_the_cohort_is_covered(events):
    assert set(events["rule"]) >= set(COMPARED)


def test_a_rupture_prints_the_score_bound_it_compared_with(events):
    rows = events[events["rule"] == "baseline_k_sd"].to_dict("records")
    assert rows
    for row in rows:
        sentence = text(row)
        score, bound, baseline, n, drop, s_used = numbers(
            rf"{NUMBER} was at or below {NUMBER}: the patient's usual level {NUMBER} \(mean of "
            rf"{NUMBER} earlier sessions\) minus {NUMBER} points.*\({NUMBER} points,",
            sentence,
        )
        expected = float(row["baseline"]) - float(row["threshold"])
        assert close(bound, expected, 2) and close(score, float(row["score"]), 2)
        assert close(baseline, float(row["baseline"]), 2) and n == row["n_baseline"]
        assert close(drop, float(row["threshold"]), 2) and close(s_used, float(row["s_used"]), 2)
        assert float(row["score"]) <= expected + 1e-6, "the rule fired, so the score is at or below the bound"
        assert 1.0 <= bound <= 5.0, "a bound is a score on the 1-5 scale, not a drop"
        # The stored sentence (analytics) prints the same bound.
        (stored,) = numbers(rf"at or below {NUMBER}:", str(row["explanation"]))
        assert close(stored, expected, 2)


def test_an_early_rupture_prints_the_previous_score_and_the_drop(events):
    rows = events[events["rule"] == "previous_session"].to_dict("records")
    assert rows
    for row in rows:
        previous, score, drop = numbers(
            rf"fell from {NUMBER} to {NUMBER} .* at least {NUMBER} points", text(row)
        )
        assert close(previous, float(row["score"]) + float(row["magnitude"]), 2)
        assert close(score, float(row["score"]), 2) and close(drop, float(row["threshold"]), 2)
        assert float(row["magnitude"]) >= float(row["threshold"]) - 1e-6


def test_a_repair_prints_its_target_score(events):
    rows = events[events["rule"] == "back_within_s"].to_dict("records")
    assert rows
    for row in rows:
        score, target, rupture, baseline, s_used = numbers(
            rf"{NUMBER} is back at or above {NUMBER}: the usual level before the rupture at session "
            rf"{NUMBER} \({NUMBER}\) minus one session-to-session variation \({NUMBER}\)",
            text(row),
        )
        expected = float(row["baseline"]) - float(row["s_used"])
        assert close(target, expected, 2) and close(baseline, float(row["baseline"]), 2)
        assert close(s_used, float(row["s_used"]), 2) and rupture == row["rupture_session"]
        assert float(row["score"]) >= expected - 1e-6 and close(score, float(row["score"]), 2)
        assert 1.0 <= target <= 5.0
        # The analysis stores the points to regain; the score they come to is the target.
        rupture_score = float(row["score"]) - float(row["magnitude"])
        assert rupture_score + float(row["threshold"]) == pytest.approx(expected, abs=1e-9)
        (stored,) = numbers(rf"\({NUMBER} or more\)", str(row["explanation"]))
        assert close(stored, expected, 1)


def test_an_unrepaired_rupture_prints_the_target_it_did_not_reach(events):
    rows = events[events["rule"] == "window_ended"].to_dict("records")
    assert rows
    for row in rows:
        score, target, rupture, baseline, s_used = numbers(
            rf"{NUMBER} did not come back to {NUMBER} or above \(the usual level before the rupture at "
            rf"session {NUMBER}, {NUMBER}, minus one variation, {NUMBER}\)",
            text(row),
        )
        expected = float(row["baseline"]) - float(row["s_used"])
        assert close(target, expected, 2) and float(row["score"]) < expected
        assert close(baseline, float(row["baseline"]), 2) and close(s_used, float(row["s_used"]), 2)
        assert rupture == row["rupture_session"] and close(score, float(row["score"]), 2)
        assert 1.0 <= target <= 5.0


def test_a_decline_prints_its_cusum_over_the_limit(events):
    rows = events[events["rule"] == "lower_cusum"].to_dict("records")
    assert rows
    for row in rows:
        baseline, s_used, cusum, limit = numbers(
            rf"usual level \({NUMBER}\).*variation \({NUMBER}\), reached {NUMBER}, over the decision "
            rf"limit {NUMBER}",
            text(row),
        )
        assert close(baseline, float(row["baseline"]), 2) and close(s_used, float(row["s_used"]), 2)
        assert close(cusum, float(row["cusum"]), 1) and close(limit, float(row["threshold"]), 1)
        assert float(row["cusum"]) > float(row["threshold"])


def test_a_low_alliance_prints_the_cut_off_and_its_sessions(events):
    rows = events[events["rule"] == "below_cutoff"].to_dict("records")
    for row in rows:
        cutoff, run, first, last, score = numbers(
            rf"below the clinic's cut-off {NUMBER} at {NUMBER} sessions in a row \(sessions {NUMBER} "
            rf"to {NUMBER}; {NUMBER} at the last\)",
            text(row),
        )
        assert (cutoff, run, first, last) == (3.0, 3, row["from_session"], row["session"])
        assert close(score, float(row["score"]), 2) and float(row["score"]) < 3.0


def test_the_exports_threshold_is_the_score_compared_with(events):
    for row in events.to_dict("records"):
        value = threshold_compared(
            rule=str(row["rule"]), detail=detail(row), threshold=row["threshold"], magnitude=row["magnitude"]
        )
        bound = score_bound(
            rule=str(row["rule"]), detail=detail(row), threshold=row["threshold"], magnitude=row["magnitude"]
        )
        if row["rule"] in ("lower_cusum", "tang_derubeis"):
            assert bound is None and value == row["threshold"]
        else:
            assert value == bound and 1.0 <= float(value) <= 5.0, row  # type: ignore[arg-type]
