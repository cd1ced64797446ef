"""Accuracy on simulated clinics (docs/methods.md, "Simulation study"): the floors of issue 3.

The full grid is produced by ``python -m monitoring.analytics.study``; here the default condition
runs on a cohort large enough for the floors to be checked with some margin.
"""

from __future__ import annotations

import pytest

from monitoring.analytics.study import FLOORS, Condition, meets_floors, run_condition


@pytest.fixture(scope="module")
def default_result() -> dict[str, float | str]:
    return run_condition(Condition(), n_patients=5000, calibration_patients=2000, seed=2026)


@pytest.mark.parametrize("criterion", list(FLOORS))
def test_the_default_rules_meet_the_floor(default_result: dict[str, float | str], criterion: str) -> None:
    op, bound = FLOORS[criterion]
    assert meets_floors(default_result)[criterion], (
        f"{criterion} = {default_result[criterion]:.4f}, needs {op} {bound}"
    )


def test_repairs_follow_almost_every_flagged_rupture(default_result: dict[str, float | str]) -> None:
    assert float(default_result["repair_found_given_rupture"]) >= 0.95


def test_sudden_gains_are_found_and_stable_patients_rarely_get_one(
    default_result: dict[str, float | str],
) -> None:
    assert float(default_result["sudden_gain_found"]) >= 0.7
    assert float(default_result["stable_sudden_share"]) <= 0.02
