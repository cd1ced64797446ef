"""Configuration, presets and the stored clinic parameters."""

from __future__ import annotations

import json
import math

import pytest

from monitoring.analytics import PRESETS, AnalysisConfig, ClinicParameters, analyse
from monitoring.analytics import columns as c
from monitoring.analytics.simulate import simulate_cohort
from tests.analytics.conftest import one_patient


def test_defaults_are_those_of_methods_md() -> None:
    config = AnalysisConfig()
    assert (config.k, config.repair_window, config.reliability, config.sd_ref_default) == (2.5, 3, 0.90, 0.6)
    assert (config.cusum_reference, config.cusum_decision) == (0.5, 3.5)  # methods.md: 4, see docs
    assert config.provisional_lambda == 0.80
    assert config.sensitivity == "standard"


def test_presets_order_the_thresholds() -> None:
    ks = [AnalysisConfig.preset(name).k for name in ("strict", "standard", "sensitive", "very_sensitive")]
    assert ks == sorted(ks, reverse=True) and ks[2] == 2.0 and ks[3] == 1.0
    assert set(PRESETS) == {"strict", "standard", "sensitive", "very_sensitive"}
    assert AnalysisConfig.preset("sensitive", repair_window=4).repair_window == 4


@pytest.mark.parametrize(
    "overrides",
    [
        {"k": 0},
        {"repair_window": 0},
        {"reliability": 1.0},
        {"sudden_window": 9},
        {"pattern_scale": "x"},
        {"spread_floor": "x"},
        {"decline_during_rupture": "x"},
    ],
)
def test_invalid_configs_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AnalysisConfig(**overrides)  # type: ignore[arg-type]


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        AnalysisConfig.preset("loud")


def test_clinic_parameters_round_trip_through_json() -> None:
    clinic = analyse(simulate_cohort(60, seed=4).scores).clinic.stamped("2026-11-22")
    again = ClinicParameters.from_dict(json.loads(json.dumps(clinic.to_dict())))
    assert again == clinic
    assert again.estimated_at == "2026-11-22"
    assert set(again.scales) == set(c.SCALES)


def test_estimates_need_twenty_patients_with_three_sessions() -> None:
    few = analyse(simulate_cohort(10, seed=4, sessions=(6, 8)).scores).clinic
    many = analyse(simulate_cohort(40, seed=4, sessions=(6, 8)).scores).clinic
    assert few.used_priors and few[c.TOTAL].clinic_mean == 3.9 and few[c.TOTAL].n_patients == 10
    assert not many.used_priors and many[c.TOTAL].n_patients_min_sessions == 40
    assert 0 < many[c.TOTAL].noise_sd < many[c.TOTAL].pooled_within_sd < 1


def test_sensitive_presets_flag_more() -> None:
    scores = simulate_cohort(200, seed=8).scores
    clinic = analyse(scores).clinic
    counts = [
        len(analyse(scores, AnalysisConfig.preset(name, clinic=clinic)).events)
        for name in ("strict", "standard", "sensitive", "very_sensitive")
    ]
    assert counts == sorted(counts)


def test_scale_reliability_changes_sem_and_rc() -> None:
    config = AnalysisConfig(scale_reliability={"bond": 0.75})
    events_sem = analyse(one_patient([4.0, 4.1, 3.9, 4.0, 3.0]), config).events
    bond = events_sem[events_sem[c.SCALE] == c.BOND]
    total = events_sem[events_sem[c.SCALE] == c.TOTAL]
    assert math.isclose(bond[c.SEM].iloc[0], 0.6 * math.sqrt(0.25))
    assert math.isclose(total[c.SEM].iloc[0], 0.6 * math.sqrt(0.10))
