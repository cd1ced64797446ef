"""Outcome measures (methods.md section 6): PHQ-9 / GAD-7 scoring, the NHS Talking Therapies
definitions, the alliance-outcome link against statsmodels and on cohorts with a known effect,
expected recovery and not on track."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import (
    MEASURES,
    alliance_outcome,
    episode_outcomes,
    expected_recovery,
    not_on_track,
    reliable_change_index,
    score_measure,
)
from monitoring.analytics.outcomes import GAD7, PHQ9
from monitoring.analytics.simulate import simulate_cohort
from monitoring.analytics.simulate_symptoms import simulate_symptoms

# --- Scoring -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total"),
    [
        ([0] * 9, 0.0),
        ([3] * 9, 27.0),
        ([1, 2, 0, 3, 1, 1, 2, 0, 0], 10.0),  # the cut-off exactly
        ([2] * 8 + [None], 18.0),  # one item missing: prorated, 16 / 8 * 9
        ([1, 1, 1, 1, 1, 1, 1, 0, None], 8.0),  # 7 / 8 * 9 = 7.875, rounded
        ([1] * 7 + [None, None], math.nan),  # two missing: no total
    ],
)
def test_phq9_totals(answers: list[int | None], total: float) -> None:
    result = score_measure(answers, PHQ9)
    assert (math.isnan(result) and math.isnan(total)) or result == total


def test_gad7_total_and_prorating() -> None:
    assert score_measure([3, 2, 1, 0, 1, 2, 3], GAD7) == 12.0
    assert score_measure([3, 3, 3, 3, 3, 3, None], GAD7) == 21.0
    assert math.isnan(score_measure([3, 3, 3, 3, 3, None, None], GAD7))


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([4] + [0] * 8, "whole numbers 0-3, not 4"),
        ([0.5] + [0] * 8, "not 0.5"),
        ([0] * 8, "has 9 items, not 8"),
    ],
)
def test_scoring_refuses_answers_off_the_scale(answers: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score_measure(answers, PHQ9)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands(score: int, band: str) -> None:
    assert PHQ9.band(score) == band


@pytest.mark.parametrize(
    ("score", "band"), [(4, "minimal"), (5, "mild"), (10, "moderate"), (14, "moderate"), (15, "severe")]
)
def test_gad7_bands(score: int, band: str) -> None:
    assert GAD7.band(score) == band


def test_measures_carry_their_loinc_codes_and_thresholds() -> None:
    assert (MEASURES["phq9"].loinc_panel, MEASURES["phq9"].loinc_total) == ("44249-1", "44261-6")
    assert (MEASURES["gad7"].loinc_panel, MEASURES["gad7"].loinc_total) == ("69737-5", "70274-6")
    assert (PHQ9.cutoff, PHQ9.reliable_change, GAD7.cutoff, GAD7.reliable_change) == (10, 6, 8, 4)
    assert PHQ9.risk_item == 9 and GAD7.risk_item is None


def test_jacobson_truax_reliable_change_index() -> None:
    # 1.96 * sqrt(2) * SD * sqrt(1 - r): SD 5, r 0.84 -> 1.96 * 1.4142 * 5 * 0.4 = 5.54
    assert reliable_change_index(sd=5.0, reliability=0.84) == pytest.approx(5.5437, abs=1e-3)


# --- NHS Talking Therapies outcomes -------------------------------------------------------------


def courses(**patients: tuple[tuple[float, float] | None, tuple[float, float] | None]) -> pd.DataFrame:
    """patient=((phq first, phq last), (gad first, gad last)); None leaves a measure out."""
    rows = []
    for patient, (phq, gad) in patients.items():
        for code, pair in (("phq9", phq), ("gad7", gad)):
            if pair is not None:
                rows += [(patient, 1, code, pair[0]), (patient, 2, code, np.nan), (patient, 5, code, pair[1])]
    return pd.DataFrame(rows, columns=["patient", "session", "measure", "score"])


def test_talking_therapies_definitions_on_hand_made_cases() -> None:
    frame = courses(
        exact_thresholds=((16, 10), (12, 8)),  # down 6 and 4: reliable; but both still at caseness
        one_short=((16, 11), (12, 9)),  # down 5 and 3: not reliable
        recovered=((16, 9), (12, 7)),  # down 7 and 5, both below caseness at the end
        recovered_not_reliably=((11, 9), (9, 7)),  # below caseness, but by 2 points only
        mixed=((18, 8), (5, 10)),  # PHQ-9 down 10, GAD-7 up 5: neither improved nor deteriorated
        worse=((6, 12), (4, 8)),  # up 6 and 4: reliable deterioration; not a case at the start
        gad_only=(None, (10, 6)),  # judged on the one measure
    )
    out = episode_outcomes(frame).set_index("patient")
    row = out.loc["exact_thresholds"]
    assert (row.phq9_first, row.phq9_last, row.gad7_first, row.gad7_last) == (16, 10, 12, 8)
    assert row.caseness_start and row.reliable_improvement and not row.recovery and not row.reliable_recovery
    assert not row.reliable_deterioration
    row = out.loc["one_short"]
    assert row.caseness_start and not row.reliable_improvement and not row.recovery
    row = out.loc["recovered"]
    assert row.recovery and row.reliable_improvement and row.reliable_recovery
    row = out.loc["recovered_not_reliably"]
    assert row.recovery and not row.reliable_improvement and not row.reliable_recovery
    row = out.loc["mixed"]
    assert row.caseness_start and not row.reliable_improvement and not row.reliable_deterioration
    assert not row.recovery  # GAD-7 10 is at caseness at the end
    row = out.loc["worse"]
    assert not row.caseness_start and row.reliable_deterioration and not row.reliable_improvement
    assert pd.isna(row.recovery) and pd.isna(row.reliable_recovery)
    row = out.loc["gad_only"]
    assert pd.isna(row.phq9_first) and row.caseness_start and row.recovery and row.reliable_recovery


def test_episode_outcomes_refuses_unknown_measures() -> None:
    frame = pd.DataFrame({"patient": ["a"], "session": [1], "measure": ["core10"], "score": [12.0]})
    with pytest.raises(ValueError, match=r"unknown measure\(s\) \['core10'\]"):
        episode_outcomes(frame)


# --- The alliance-outcome link ------------------------------------------------------------------


def hoffart_cohort(
    n: int, sessions: int, *, within: float, between: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Written apart from monitoring.analytics.simulate_symptoms: scores follow a stationary AR
    process around a patient mean that rises with the patient's usual alliance (``between``),
    and a session above the patient's own alliance moves the next score by ``within``."""
    rng = np.random.default_rng(seed)
    alliance, outcomes = [], []
    for p in range(n):
        usual = rng.normal(4.0, 0.6)
        centre = 14.0 + between * (usual - 4.0) + rng.normal(0, 2.0)
        score = centre + rng.normal(0, 2.0)
        for s in range(1, sessions + 1):
            now = usual + rng.normal(0, 0.45)
            goal, task, bond = now + rng.normal(0, 0.2, 3)
            alliance.append((f"P{p}", s, goal, task, bond))
            outcomes.append((f"P{p}", s, score))
            score = 0.6 * score + 0.4 * centre + within * (now - usual) + rng.normal(0, 2.0)
    return (
        pd.DataFrame(alliance, columns=["patient", "session", "goal", "task", "bond"]),
        pd.DataFrame(outcomes, columns=["patient", "session", "score"]),
    )


def test_alliance_outcome_agrees_with_statsmodels_mixedlm() -> None:
    smf = pytest.importorskip("statsmodels.formula.api")
    alliance, outcomes = hoffart_cohort(80, 10, within=-1.5, between=2.0, seed=2)
    ours = alliance_outcome(alliance, outcomes, lag=1, scale="total")

    frame = alliance.assign(a=alliance[["goal", "task", "bond"]].mean(axis=1))
    means = frame.groupby("patient")["a"].mean()
    frame["w"] = frame["a"] - frame["patient"].map(means)
    frame["b"] = frame["patient"].map(means) - means.mean()
    later = outcomes.assign(session=outcomes["session"] - 1).rename(columns={"score": "next_score"})
    rows = frame.merge(outcomes, on=["patient", "session"]).merge(later, on=["patient", "session"])
    with warnings.catch_warnings():
        # statsmodels must converge cleanly for the comparison to mean anything.
        warnings.simplefilter("error")
        fit = smf.mixedlm("next_score ~ score + w + b", rows, groups=rows["patient"]).fit(reml=True)

    assert ours.n_observations == len(rows) == 80 * 9 and ours.n_patients == 80
    assert ours.within.estimate == pytest.approx(fit.params["w"], abs=0.01)
    assert ours.between.estimate == pytest.approx(fit.params["b"], abs=0.01)
    assert ours.lagged.estimate == pytest.approx(fit.params["score"], abs=0.01)
    assert ours.intercept.estimate == pytest.approx(fit.params["Intercept"], abs=0.01)
    # Standard errors: ours are the GLS ones, (X'V^-1 X)^-1 (as lme4 and nlme report them);
    # statsmodels inverts the observed information of all parameters, which differs a little for
    # the between and lagged terms (methods.md section 6.3). The within term agrees.
    assert ours.within.se == pytest.approx(fit.bse["w"], abs=0.01)
    assert ours.sigma2 == pytest.approx(fit.scale, rel=0.001)
    assert ours.tau2 == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=0.001)
    assert ours.tau2 > 0.5


def test_within_and_between_effects_of_opposite_sign_are_kept_apart() -> None:
    """Hoffart et al.'s exercise and heart-attack example: sessions with a better alliance than
    usual come before fewer symptoms, while patients with a better usual alliance have more."""
    alliance, outcomes = hoffart_cohort(120, 12, within=-1.5, between=3.0, seed=11)
    result = alliance_outcome(alliance, outcomes)
    assert result.within.ci_low <= -1.5 <= result.within.ci_high
    assert result.within.ci_high < 0
    assert result.between.estimate > 0 and result.between.ci_low > 0


def test_a_null_cohort_has_a_within_interval_around_zero() -> None:
    alliance, outcomes = hoffart_cohort(120, 12, within=0.0, between=3.0, seed=12)
    result = alliance_outcome(alliance, outcomes, scale="task")
    assert result.within.ci_low <= 0.0 <= result.within.ci_high
    assert result.scale == "task" and result.lag == 1


def test_the_within_effect_is_recovered_on_the_library_generator() -> None:
    alliance = simulate_cohort(150, seed=4, sessions=(10, 16)).scores
    symptoms = simulate_symptoms(alliance, seed=5, within=-2.0, scale="task")
    result = alliance_outcome(alliance, symptoms.scores("phq9"), scale="task")
    assert result.within.ci_low <= -2.0 <= result.within.ci_high
    assert result.n_patients == 150


def test_missed_sessions_leave_their_pair_out_and_lag_two_pairs_further() -> None:
    alliance, outcomes = hoffart_cohort(10, 6, within=-1.0, between=0.0, seed=1)
    gappy = outcomes[outcomes["session"] != 4]
    assert alliance_outcome(alliance, gappy).n_observations == 10 * 3  # pairs 1-2, 2-3, 5-6
    assert alliance_outcome(alliance, outcomes, lag=2).n_observations == 10 * 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scale": "warmth"}, "scale must be one of"), ({"lag": 0}, "lag must be 1 or more")],
)
def test_alliance_outcome_refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    alliance, outcomes = hoffart_cohort(5, 4, within=-1.0, between=0.0, seed=1)
    with pytest.raises(ValueError, match=message):
        alliance_outcome(alliance, outcomes, **kwargs)  # type: ignore[arg-type]


def test_alliance_outcome_says_when_there_is_too_little_data() -> None:
    alliance, outcomes = hoffart_cohort(1, 10, within=-1.0, between=0.0, seed=1)
    with pytest.raises(ValueError, match="too few patients"):
        alliance_outcome(alliance, outcomes)


# --- Expected recovery and not on track ---------------------------------------------------------


def test_a_young_clinic_uses_the_published_course_and_an_older_one_its_own() -> None:
    alliance = simulate_cohort(400, seed=7, sessions=(8, 16)).scores
    finished = simulate_symptoms(alliance, seed=8).scores("phq9")
    young = expected_recovery(finished[finished["patient"].isin(finished["patient"].unique()[:20])], PHQ9)
    assert set(young.source.values()) == {"published"} and not young.from_clinic
    # Published course: 60% of intake by the 8th session, band = 4/3 of the reliable change.
    moderate = young.expected["moderate"]
    assert moderate[8] == pytest.approx(0.6 * moderate[1])
    assert young.upper["moderate"][8] - moderate[8] == pytest.approx(8.0)
    own = expected_recovery(finished, PHQ9)
    assert own.source["moderately severe"] == "clinic" and own.episodes["moderately severe"] >= 30
    assert own.expected["moderately severe"][8] < own.expected["moderately severe"][1]


def test_not_on_track_flags_worse_than_expected_and_not_the_expected_course() -> None:
    curves = expected_recovery(pd.DataFrame(columns=["patient", "session", "score"]), PHQ9)
    scores = pd.DataFrame(
        {
            "patient": ["better"] * 6 + ["worse"] * 6 + ["new"],
            "session": [1, 2, 3, 4, 5, 6] * 2 + [1],
            "score": [16, 15, 14, 12, 11, 10, 16, 17, 18, 18, 19, 20, 27],
        }
    )
    result = not_on_track(scores, curves, PHQ9).set_index("patient")
    assert not result.at["better", "not_on_track"]
    assert result.at["worse", "not_on_track"] and result.at["worse", "latest"] > result.at["worse", "upper"]
    assert not result.at["new", "not_on_track"]  # one score: nothing to be on track with yet
    assert result.at["worse", "band"] == "moderately severe" and result.at["worse", "position"] == 6
