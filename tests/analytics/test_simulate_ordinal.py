"""The second, independent simulator: ordinal item model, AR(1) states, missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import analyse
from monitoring.analytics import columns as c
from monitoring.analytics.simulate import simulate_cohort
from monitoring.analytics.simulate_ordinal import (
    DEFAULT_SCENARIOS,
    ITEM_COLUMNS,
    MIN_SESSIONS,
    SCENARIOS,
    simulate_ordinal_cohort,
)

ITEMS = list(ITEM_COLUMNS)


def _assert_same_cohort(a, b) -> None:
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.therapist_items, b.therapist_items)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.scores, b.scores)


def _observed(cohort) -> pd.DataFrame:
    """Scores with each session's position relative to the planted onset."""
    frame = cohort.scores.merge(cohort.truth, on=[c.PATIENT, "scenario"])
    frame["rel"] = frame[c.SESSION] - frame["onset"].astype(float)
    return frame


def test_it_is_deterministic_for_a_seed() -> None:
    options = {"missing_sessions": 0.05, "missing_items": 0.03, "short_share": 0.2}
    a = simulate_ordinal_cohort(60, seed=5, **options)
    _assert_same_cohort(a, simulate_ordinal_cohort(60, seed=5, **options))
    assert not simulate_ordinal_cohort(60, seed=6, **options).items.equals(a.items)


def test_missing_items_leave_the_other_answers_unchanged() -> None:
    full = simulate_ordinal_cohort(40, seed=2)
    holed = simulate_ordinal_cohort(40, seed=2, missing_items=0.05)
    answered = holed.items[ITEMS].notna().to_numpy()
    assert (~answered).any()
    np.testing.assert_array_equal(
        holed.items[ITEMS].to_numpy()[answered], full.items[ITEMS].to_numpy(dtype=float)[answered]
    )


def test_the_schema_is_simulate_cohorts() -> None:
    ours = simulate_ordinal_cohort(30, seed=1, sessions=(6, 12))
    theirs = simulate_cohort(30, seed=1, sessions=(6, 12))
    for name in ("items", "therapist_items", "scores"):
        pd.testing.assert_series_equal(getattr(ours, name).dtypes, getattr(theirs, name).dtypes)
    assert list(ours.truth.columns) == [*theirs.truth.columns, "session_sd", "rho"]
    pd.testing.assert_series_equal(ours.truth.dtypes[theirs.truth.columns], theirs.truth.dtypes)
    assert ours.items[c.PATIENT].iloc[0] == "Q0001"
    assert set(ours.truth["scenario"]) <= set(SCENARIOS)
    assert set(DEFAULT_SCENARIOS) == set(SCENARIOS) == set(MIN_SESSIONS)
    per_patient = ours.items.groupby(c.PATIENT)[c.SESSION].agg(["min", "max", "count"])
    assert (per_patient["min"] == 1).all() and (per_patient["max"] == per_patient["count"]).all()
    assert (per_patient["count"] == ours.truth.set_index(c.PATIENT)["n_sessions"]).all()
    pd.testing.assert_frame_equal(
        ours.therapist_items[[c.PATIENT, c.SESSION]], ours.items[[c.PATIENT, c.SESSION]]
    )


def test_answers_are_whole_numbers_1_to_5_or_missing() -> None:
    cohort = simulate_ordinal_cohort(200, seed=3, missing_items=0.05)
    answers = cohort.items[ITEMS].to_numpy()
    given = answers[~np.isnan(answers)]
    assert set(np.unique(given)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.isnan(answers).any()
    therapist = cohort.therapist_items[ITEMS].to_numpy()
    assert not np.isnan(therapist).any() and set(np.unique(therapist)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert cohort.scores[c.TOTAL].notna().all()  # at most 2 of 12 missing: the total is prorated


def test_missing_items_are_at_most_two_per_session() -> None:
    cohort = simulate_ordinal_cohort(400, seed=4, missing_items=0.10)
    per_session = cohort.items[ITEMS].isna().sum(axis=1)
    assert per_session.max() == 2
    assert 0.06 < per_session.sum() / (12 * len(per_session)) < 0.10  # 10% asked, capped at 2


def test_missing_item_rate_is_as_requested() -> None:
    cohort = simulate_ordinal_cohort(400, seed=4, missing_items=0.02)
    assert cohort.items[ITEMS].isna().to_numpy().mean() == pytest.approx(0.02, abs=0.004)


@pytest.mark.parametrize("session_sd", [(0.12, 0.30), (0.30, 0.50)])
def test_stable_patients_have_the_requested_within_patient_sd(session_sd: tuple[float, float]) -> None:
    lo, hi = session_sd
    cohort = simulate_ordinal_cohort(800, seed=7, scenarios={"stable": 1}, session_sd=session_sd)
    assert cohort.truth["session_sd"].between(lo, hi).all()
    within = cohort.scores.groupby(c.PATIENT)[c.TOTAL].std()
    q25, median, q75 = within.quantile([0.25, 0.5, 0.75])
    assert lo <= q25 and q75 <= hi
    # The median of the drawn SDs is the geometric mean of the range; the observed median sits a
    # few per cent below it (a sample SD of a short series is biased low).
    assert median == pytest.approx(np.sqrt(lo * hi), rel=0.12)
    # Pooled within-patient variance equals the mean target variance (that is the calibration).
    assert np.sqrt((within**2).mean()) == pytest.approx(
        np.sqrt((cohort.truth["session_sd"] ** 2).mean()), rel=0.06
    )


def test_the_clinic_level_distribution() -> None:
    cohort = simulate_ordinal_cohort(1500, seed=8, scenarios={"stable": 1}, sessions=(10, 10))
    levels = cohort.scores.groupby(c.PATIENT)[c.TOTAL].mean()
    assert 3.88 < levels.mean() < 4.02
    assert 0.44 < levels.std() < 0.56
    assert levels.skew() < 0  # the ceiling compresses the upper tail


def test_ceiling_raters_answer_5_to_nearly_everything() -> None:
    cohort = simulate_ordinal_cohort(100, seed=9, scenarios={"stable": 1, "ceiling": 1})
    ceiling = cohort.truth.set_index(c.PATIENT)["ceiling"]
    assert ceiling.mean() == pytest.approx(0.5, abs=0.15)
    assert (ceiling == (cohort.truth.set_index(c.PATIENT)["scenario"] == "ceiling")).all()
    answers = cohort.items[ITEMS].to_numpy()
    rater = cohort.items[c.PATIENT].map(ceiling).to_numpy(dtype=bool)
    assert (answers[rater] == 5).mean() > 0.95
    assert (answers[~rater] == 5).mean() < 0.5


@pytest.mark.parametrize("scenario", ["rupture_repair", "rupture_unrepaired"])
def test_planted_drops_are_visible_in_the_observed_totals(scenario: str) -> None:
    cohort = simulate_ordinal_cohort(300, seed=10, scenarios={scenario: 1})
    frame = _observed(cohort)
    before = frame[frame["rel"] < 0].groupby(c.PATIENT)[c.TOTAL].mean()
    at = frame[frame["rel"] == 0].set_index(c.PATIENT)
    assert len(at) == len(cohort.truth)  # every onset is a completed session
    drop = before - at[c.TOTAL]
    assert drop.mean() == pytest.approx(at["magnitude"].mean(), abs=0.2)
    assert at["magnitude"].between(1.0, 1.5).all()
    if scenario == "rupture_repair":
        back = frame[frame["rel"] >= frame["duration"].astype(float)].groupby(c.PATIENT)[c.TOTAL].mean()
        assert (before - back).abs().mean() < 0.2  # back to the usual level
    else:
        later = frame[frame["rel"] >= 0].groupby(c.PATIENT)[c.TOTAL].mean()
        assert (before - later).mean() == pytest.approx(at["magnitude"].mean(), abs=0.2)


def test_sudden_gains_and_task_declines_are_the_planted_size() -> None:
    gains = _observed(simulate_ordinal_cohort(200, seed=11, scenarios={"sudden_gain": 1}))
    before = gains[gains["rel"] < 0].groupby(c.PATIENT)[c.TOTAL].mean()
    after = gains[gains["rel"] >= 0].groupby(c.PATIENT)[c.TOTAL].mean()
    assert (after - before).mean() == pytest.approx(
        gains.groupby(c.PATIENT)["magnitude"].first().mean(), abs=0.2
    )

    declines = _observed(simulate_ordinal_cohort(200, seed=12, scenarios={"task_decline": 1}))
    window = declines[declines["rel"].between(0, 8)]

    def slope(scale: str) -> float:
        return float(
            window.groupby(c.PATIENT)[[c.SESSION, scale]]
            .apply(lambda g: np.polyfit(g[c.SESSION], g[scale], 1)[0])
            .mean()
        )

    planted = declines.groupby(c.PATIENT)["magnitude"].first().mean()
    assert slope(c.TASK) == pytest.approx(-planted, abs=0.03)
    assert slope(c.GOAL) == pytest.approx(-0.4 * planted, abs=0.03)
    assert abs(slope(c.BOND)) < 0.02


def test_events_have_room_to_be_observed() -> None:
    cohort = simulate_ordinal_cohort(
        400,
        seed=13,
        scenarios={name: 1 for name in SCENARIOS},
        sessions=(1, 12),
        missing_sessions=0.1,
        short_share=0.5,
    )
    truth = cohort.truth.set_index(c.PATIENT)
    assert (truth["n_sessions"] >= truth["scenario"].map(MIN_SESSIONS)).all()
    frame = _observed(cohort)
    with_onset = truth[truth["onset"].notna()]
    assert set(with_onset["scenario"]) == set(SCENARIOS) - {"stable", "ceiling", "growth", "low_rising"}
    before = frame[frame["rel"] < 0].groupby(c.PATIENT).size().reindex(with_onset.index, fill_value=0)
    assert (before >= 3).all()
    repair = frame[frame["scenario"] == "rupture_repair"]
    after = repair[repair["rel"] >= repair["duration"].astype(float)].groupby(c.PATIENT).size()
    assert (after >= 2).all() and len(after) == (truth["scenario"] == "rupture_repair").sum()
    short = cohort.truth[cohort.truth["scenario"].isin(["stable", "growth", "ceiling"])]
    assert short["n_sessions"].between(4, 6).mean() > 0.3


def test_missed_sessions_leave_gaps_in_the_numbering() -> None:
    cohort = simulate_ordinal_cohort(200, seed=14, missing_sessions=0.1)
    sessions = cohort.items.groupby(c.PATIENT)[c.SESSION]
    assert (sessions.min() == 1).all()
    assert sessions.apply(lambda s: bool(np.all(np.diff(s.to_numpy()) >= 1))).all()
    steps = sessions.diff().dropna()
    assert (steps > 1).mean() == pytest.approx(0.1, abs=0.03)
    assert (sessions.count() == cohort.truth.set_index(c.PATIENT)["n_sessions"]).all()


def test_short_episodes() -> None:
    cohort = simulate_ordinal_cohort(
        100, seed=15, scenarios={"stable": 1, "rupture_repair": 1}, short_share=1.0
    )
    truth = cohort.truth
    assert set(truth["scenario"]) == {"stable", "rupture_repair"}  # both rows below are checked
    assert truth.loc[truth["scenario"] == "stable", "n_sessions"].between(4, 6).all()
    assert (truth.loc[truth["scenario"] == "rupture_repair", "n_sessions"] == 8).all()


def test_analyse_runs_on_the_output() -> None:
    cohort = simulate_ordinal_cohort(300, seed=16, missing_sessions=0.03, missing_items=0.02, short_share=0.1)
    analysis = analyse(cohort.scores)
    total = analysis.clinic[c.TOTAL]
    assert 3.75 < total.clinic_mean < 4.1
    assert total.n_patients == 300
    kinds = set(analysis.events["kind"])
    assert {"rupture", "repair", "unrepaired"} <= kinds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scenarios": {"nonsense": 1}},
        {"scenarios": {"stable": 0}},
        {"sessions": (0, 4)},
        {"session_sd": (0.3, 0.2)},
        {"missing_sessions": 0.95},
        {"missing_items": 0.6},
        {"short_share": 1.5},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        simulate_ordinal_cohort(10, seed=0, **kwargs)  # type: ignore[arg-type]
