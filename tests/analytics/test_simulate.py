"""The simulator used by the tests, the study, the benchmark and the demo seeder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import analyse
from monitoring.analytics import columns as c
from monitoring.analytics.simulate import DEFAULT_SCENARIOS, ITEM_COLUMNS, SCENARIOS, simulate_cohort


def test_it_is_deterministic_for_a_seed() -> None:
    a, b = simulate_cohort(30, seed=3), simulate_cohort(30, seed=3)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.therapist_items, b.therapist_items)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not simulate_cohort(30, seed=4).items.equals(a.items)


def test_items_have_the_documented_shape() -> None:
    cohort = simulate_cohort(40, seed=1, sessions=(6, 12))
    items = cohort.items
    assert list(items.columns) == ["patient", "session", "scenario", *ITEM_COLUMNS]
    assert items["patient"].iloc[0] == "P001"
    answers = items[list(ITEM_COLUMNS)].to_numpy()
    assert answers.min() >= 1 and answers.max() <= 5 and np.issubdtype(answers.dtype, np.integer)
    per_patient = items.groupby("patient")["session"].agg(["min", "max", "count"])
    assert (per_patient["min"] == 1).all() and (per_patient["max"] == per_patient["count"]).all()
    truth = cohort.truth.set_index("patient")
    assert (per_patient["count"] == truth["n_sessions"]).all()
    assert list(cohort.therapist_items.columns) == list(items.columns)
    assert set(cohort.scores.columns) >= {c.PATIENT, c.SESSION, c.GOAL, c.TASK, c.BOND, c.TOTAL}


def test_the_default_clinic_looks_like_a_clinic() -> None:
    cohort = simulate_cohort(1500, seed=2)
    analysis = analyse(cohort.scores)
    total = analysis.clinic[c.TOTAL]
    assert 3.8 <= total.clinic_mean <= 4.05
    assert 0.4 <= np.sqrt(total.tau2) <= 0.65
    with_rupture = cohort.truth["scenario"].isin(["rupture_repair", "rupture_unrepaired"]).mean()
    assert 0.35 <= with_rupture <= 0.55
    assert sum(DEFAULT_SCENARIOS.values()) == pytest.approx(1.0)
    assert set(DEFAULT_SCENARIOS) <= set(SCENARIOS)


def test_stable_patients_vary_about_0_2_on_the_total() -> None:
    cohort = simulate_cohort(400, seed=5, scenarios={"stable": 1}, sessions=(15, 20))
    levels = analyse(cohort.scores).levels
    sd = levels[levels[c.SCALE] == c.TOTAL][c.WITHIN_SD].median()
    assert 0.15 <= sd <= 0.25


def test_ceiling_raters_answer_mostly_fives() -> None:
    cohort = simulate_cohort(50, seed=6, scenarios={"ceiling": 1})
    assert (cohort.items[list(ITEM_COLUMNS)].to_numpy() == 5).mean() > 0.97


def test_therapist_ratings_follow_the_patient_a_bit_lower_and_less_variable() -> None:
    cohort = simulate_cohort(300, seed=7, scenarios={"stable": 0.5, "rupture_repair": 0.5})
    patient = cohort.items[list(ITEM_COLUMNS)].mean(axis=1)
    therapist = cohort.therapist_items[list(ITEM_COLUMNS)].mean(axis=1)
    assert therapist.mean() < patient.mean()
    assert np.corrcoef(patient, therapist)[0, 1] > 0.5
    within_p = patient.groupby(cohort.items["patient"]).std().median()
    within_t = therapist.groupby(cohort.items["patient"]).std().median()
    assert within_t < within_p


def test_planted_events_are_where_the_truth_says() -> None:
    cohort = simulate_cohort(
        200, seed=9, scenarios={"rupture_repair": 1}, noise=0.01, item_noise=0.01, rounding=False
    )
    scores = cohort.scores.merge(cohort.truth[["patient", "onset", "magnitude"]], on="patient")
    at = scores[scores["session"] == scores["onset"]]
    before = scores[scores["session"] == scores["onset"] - 1]
    drop = before.set_index("patient")["total"] - at.set_index("patient")["total"]
    assert (drop > 0.8).mean() > 0.95


def test_unknown_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate_cohort(5, seed=1, scenarios={"chaos": 1})
