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


def test_presets_are_false_alarm_budgets() -> None:
    budgets = [
        AnalysisConfig.preset(name).budget for name in ("strict", "standard", "sensitive", "very_sensitive")
    ]
    assert budgets == [0.5, 1.0, 2.0, 4.0]
    assert AnalysisConfig().budget == 1.0 and AnalysisConfig().stringency == 1.0
    strict = AnalysisConfig(stringency=1.2)
    assert (strict.k_eff, strict.decision_eff) == (pytest.approx(3.0), pytest.approx(4.2))


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


def test_a_young_clinic_leans_on_the_prior_in_proportion_to_its_patients() -> None:
    scores = simulate_cohort(10, seed=4, sessions=(6, 8)).scores
    few = analyse(scores).clinic
    own = analyse(scores, AnalysisConfig(min_patients=1)).clinic  # its data alone
    weight = 10 / 20  # 10 patients with 3+ sessions of the 20 it takes to stand alone
    assert few.used_priors and few[c.TOTAL].n_patients == 10
    assert few[c.TOTAL].clinic_mean == pytest.approx(weight * own[c.TOTAL].clinic_mean + (1 - weight) * 3.9)
    assert few[c.TOTAL].tau2 == pytest.approx(weight * own[c.TOTAL].tau2 + (1 - weight) * 0.25)
    one = analyse(simulate_cohort(1, seed=4, sessions=(6, 8)).scores).clinic
    assert one[c.TOTAL].clinic_mean == 3.9  # below two patients the prior stands as it is
    many = analyse(simulate_cohort(40, seed=4, sessions=(6, 8)).scores).clinic
    assert not many.used_priors and many[c.TOTAL].n_patients_min_sessions == 40
    assert 0 < many[c.TOTAL].noise_sd < many[c.TOTAL].pooled_within_sd < 1
    assert many[c.TOTAL].prior_var > 0 and many[c.TOTAL].prior_df >= 1


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
    events_sem = analyse(one_patient([4.0, 4.1, 3.9, 4.0, 2.0]), config).events
    bond = events_sem[events_sem[c.SCALE] == c.BOND]
    total = events_sem[events_sem[c.SCALE] == c.TOTAL]
    assert math.isclose(bond[c.SEM].iloc[0], 0.6 * math.sqrt(0.25))
    assert math.isclose(total[c.SEM].iloc[0], 0.6 * math.sqrt(0.10))
