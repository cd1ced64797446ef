"""Accuracy on simulated clinics, calibrated on one generator and judged on the other
(docs/methods.md, "Simulation study"): the floors of the issue where they are met, and where they
are not, the documented levels (a regression guard; the trade-off is in docs/methods.md).

The full grid is ``python -m monitoring.analytics.study``; here the default and the noisy
condition run both ways on cohorts large enough to check with some margin.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitoring.analytics.study import (
    FLOORS_DEFAULT,
    FLOORS_NOISY,
    Condition,
    both_ways,
    meets_floors,
    run_condition,
)

pytestmark = pytest.mark.slow

DEFAULT = both_ways(Condition())
NOISY = both_ways(replace(Condition(), name="noisy", session_sd=(0.3, 0.5)))


@pytest.fixture(scope="module", params=DEFAULT, ids=lambda c: f"{c.calibrate_on}-to-{c.evaluate_on}")
def default_result(request: pytest.FixtureRequest) -> dict[str, float | str]:
    return run_condition(request.param, n_patients=4000, calibration_patients=2000, seed=2026)


@pytest.fixture(scope="module", params=NOISY, ids=lambda c: f"{c.calibrate_on}-to-{c.evaluate_on}")
def noisy_result(request: pytest.FixtureRequest) -> dict[str, float | str]:
    return run_condition(request.param, n_patients=4000, calibration_patients=2000, seed=2026)


MET_AT_DEFAULT = ("stable_attention_per_100", "stable_ever", "unrepaired_found")


@pytest.mark.parametrize("criterion", MET_AT_DEFAULT)
def test_at_default_noise_false_alarms_and_unrepaired_meet_the_floors(
    default_result: dict[str, float | str], criterion: str
) -> None:
    op, bound = FLOORS_DEFAULT[criterion]
    assert meets_floors(default_result, {criterion: (op, bound)})[criterion], (
        f"{criterion} = {float(default_result[criterion]):.4f}, needs {op} {bound}"
    )


def test_at_default_noise_detection_stays_where_docs_methods_md_says(
    default_result: dict[str, float | str],
) -> None:
    # Floors 95% / 95% / 75%: met on one direction, just short on the other (docs/methods.md,
    # "Simulation study" and "Trade-off"), with false alarms at half the budget.
    assert float(default_result["rupture_found"]) >= 0.92
    assert float(default_result["repair_found"]) >= 0.87
    assert float(default_result["decline_found_6"]) >= 0.70
    assert float(default_result["u_shape_declines_per_patient"]) <= 1.1  # one alarm per dip


@pytest.mark.parametrize("criterion", ("stable_attention_per_100", "stable_false_unrepaired"))
def test_noisy_patients_meet_the_false_alarm_floors(
    noisy_result: dict[str, float | str], criterion: str
) -> None:
    op, bound = FLOORS_NOISY[criterion]
    assert meets_floors(noisy_result, {criterion: (op, bound)})[criterion], (
        f"{criterion} = {float(noisy_result[criterion]):.4f}, needs {op} {bound}"
    )


def test_noisy_rupture_detection_is_what_the_noise_allows(noisy_result: dict[str, float | str]) -> None:
    # The floor (75%) is above what these budgets allow: the Neyman-Pearson limit of a single
    # session at the same false-alarm rate is about 0.6-0.75 here, and the rules reach about
    # two thirds of it (docs/methods.md, "Honest power").
    found, limit = float(noisy_result["rupture_found"]), float(noisy_result["rupture_np_limit"])
    assert found >= 0.38
    assert found <= limit + 0.02
