"""Noise-aware spread, one alarm per event, and thresholds calibrated to a false-alarm budget."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import AnalysisConfig, analyse, known_case_clinic
from monitoring.analytics import columns as c
from monitoring.analytics.calibration import Calibration, attention_rate, calibrate, steady_cohort
from monitoring.analytics.clinic import fit_variance_prior, noise_autocorrelation, unit_noise_variance
from monitoring.analytics.simulate import simulate_cohort
from tests.analytics.conftest import one_patient


def test_the_variance_prior_is_recovered_from_patients_own_variances() -> None:
    rng = np.random.default_rng(1)
    d0, s0_sq, n = 8.0, 0.04, 4000
    sigma_sq = d0 * s0_sq / rng.chisquare(d0, n)  # each patient's own variance
    df = rng.integers(4, 25, n).astype(float)
    estimate = sigma_sq * rng.chisquare(df) / df  # what a patient's sessions show
    fitted_df, fitted_var = fit_variance_prior(estimate, df)
    assert fitted_df == pytest.approx(d0, rel=0.2)
    assert fitted_var == pytest.approx(s0_sq, rel=0.05)


def test_alike_patients_give_a_prior_worth_many_sessions() -> None:
    rng = np.random.default_rng(2)
    df = np.full(2000, 15.0)
    fitted_df, fitted_var = fit_variance_prior(0.09 * rng.chisquare(df) / df, df)
    assert fitted_df > 100 and fitted_var == pytest.approx(0.09, rel=0.05)
    assert math.isnan(fit_variance_prior(np.array([0.1, 0.2]), np.array([5.0, 5.0]))[0])


def test_successive_differences_give_each_patients_noise_and_its_df() -> None:
    variance, df = unit_noise_variance(np.array([0.8, 0.0, 0.3]), np.array([10, 1, 3]))
    assert variance[0] == pytest.approx(0.04) and df[0] == pytest.approx(2 * 100 / 29)
    assert math.isnan(variance[1]) and math.isnan(df[1])


@pytest.mark.parametrize("rho", [0.0, 0.4])
def test_the_noise_autocorrelation_is_read_from_successive_differences(rho: float) -> None:
    rng = np.random.default_rng(3)
    patients, sessions = 1500, 20
    x = rng.standard_normal((patients, sessions))
    for t in range(1, sessions):
        x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho * rho) * x[:, t]
    x += rng.normal(4, 0.5, (patients, 1))  # levels differ; the differences do not care
    d = np.diff(x, axis=1).reshape(-1)
    who = np.repeat(np.arange(patients), sessions - 1)
    assert noise_autocorrelation(d, who, cutoff=float("inf")) == pytest.approx(rho, abs=0.05)


def test_a_noisy_patient_gets_a_wider_bound_than_a_calm_one() -> None:
    config = AnalysisConfig(clinic=known_case_clinic())
    calm = [4.0, 4.05, 3.95] * 4 + [3.4]
    noisy = [4.0, 4.3, 3.7] * 4 + [3.4]  # swings 0.3 either way, session after session
    results = {name: analyse(one_patient(s), config) for name, s in (("calm", calm), ("noisy", noisy))}
    spread = {
        name: a.sessions[a.sessions[c.SCALE] == c.TOTAL].iloc[-1][c.S_USED] for name, a in results.items()
    }
    assert spread["noisy"] > 1.15 * spread["calm"]
    ruptured = {
        name: not a.events[(a.events[c.KIND] == c.RUPTURE) & (a.events[c.SCALE] == c.TOTAL)].empty
        for name, a in results.items()
    }
    # The same 0.6-point dip: a rupture for the calm patient, ordinary for the noisy one.
    assert ruptured == {"calm": True, "noisy": False}


def test_a_decline_that_levels_off_is_raised_once() -> None:
    """The issue's input: a decline then a flat 3.6 for 11 sessions."""
    scores = [4.2, 4.2, 4.25, 4.15, 4.1, 4.0, 3.9, 3.8, 3.7] + [3.6] * 11
    analysis = analyse(one_patient(scores), AnalysisConfig(clinic=known_case_clinic()))
    declines = analysis.events[analysis.events[c.KIND] == c.DECLINE]
    alarms = declines[declines[c.ALARM]]
    assert sorted(set(alarms[c.SESSION])) == [10] and set(alarms[c.SCALE].astype(str)) == {c.TASK, c.TOTAL}
    assert set(declines[c.SESSION]) == {10}  # the restarted baseline finds nothing more
    levels = analysis.levels.set_index(c.SCALE)
    assert levels.loc[c.TOTAL, c.DECLINE_STATE] == c.LEVELLED_OFF
    before = analyse(
        one_patient(scores), AnalysisConfig(clinic=known_case_clinic(), decline_restart=False)
    ).events
    assert len(set(before[before[c.KIND] == c.DECLINE][c.SESSION])) > 1  # what the restart prevents


def test_a_decline_that_comes_back_is_recovered() -> None:
    scores = [4.2, 4.2, 4.25, 4.15, 4.1, 4.0, 3.9, 3.8, 3.7, 3.6, 3.9, 4.1, 4.2]
    levels = analyse(one_patient(scores), AnalysisConfig(clinic=known_case_clinic())).levels
    assert levels.set_index(c.SCALE).loc[c.TOTAL, c.DECLINE_STATE] == c.RECOVERED


def test_the_level_has_its_eb_interval() -> None:
    levels = analyse(one_patient([4.2, 4.3, 4.2]), AnalysisConfig(clinic=known_case_clinic())).levels
    total = levels.set_index(c.SCALE).loc[c.TOTAL]
    half = 1.959964 * math.sqrt(total[c.RELIABILITY] * 0.19**2 / 3)
    assert total[c.LEVEL_EB_LOW] == pytest.approx(total[c.LEVEL_EB] - half)
    assert total[c.LEVEL_EB_HIGH] == pytest.approx(total[c.LEVEL_EB] + half)


def test_the_unit_of_alarm_is_the_patient_session() -> None:
    events = analyse(simulate_cohort(300, seed=5).scores).events
    alarms = events[events[c.ALARM]]
    total = alarms[alarms[c.SCALE] == c.TOTAL]
    assert len(total) > 0
    assert set(total[c.KIND].astype(str)) <= {c.RUPTURE, c.UNREPAIRED, c.DECLINE, c.SUDDEN_LOSS}
    assert not alarms[alarms[c.KIND].isin([c.REPAIR, c.SUDDEN_GAIN])].shape[0]
    others = alarms[alarms[c.SCALE] != c.TOTAL]
    assert set(others[c.KIND].astype(str)) <= {c.RUPTURE, c.UNREPAIRED, c.DECLINE}
    assert set(others[others[c.KIND] == c.DECLINE][c.SCALE].astype(str)) <= {c.TASK}
    # Subscale ruptures raise attention only past the stricter threshold.
    sub = events[(events[c.KIND] == c.RUPTURE) & (events[c.SCALE] != c.TOTAL)]
    assert len(sub) > len(sub[sub[c.ALARM]]) > 0


def test_calibration_meets_the_budget_on_its_steady_patients() -> None:
    clinic = analyse(simulate_cohort(300, seed=6).scores).clinic
    config = AnalysisConfig()
    cal = calibrate(clinic, config, patients=400)
    assert isinstance(cal, Calibration) and cal.budget == 1.0
    steady = steady_cohort(clinic, config, patients=400)
    events = analyse(steady, config.with_clinic(clinic.calibrated(cal.to_dict()))).events
    assert attention_rate(events, len(steady)) == pytest.approx(cal.rate)
    assert cal.rate <= 1.0
    looser = calibrate(clinic, config, patients=400, budget=2.0)
    assert looser.stringency < cal.stringency and looser.rate <= 2.0
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_a_calibration_applies_only_to_its_own_budget_and_preset() -> None:
    clinic = analyse(simulate_cohort(200, seed=7).scores).clinic
    cal = calibrate(clinic, AnalysisConfig(), patients=200)
    stored = clinic.calibrated(cal.to_dict())
    assert AnalysisConfig().with_clinic(stored).stringency == cal.stringency
    assert AnalysisConfig.preset("strict").with_clinic(stored).stringency == 1.0  # other budget


def test_steady_patients_are_simulated_from_the_clinics_values() -> None:
    clinic = analyse(simulate_cohort(300, seed=8).scores).clinic
    steady = steady_cohort(clinic, AnalysisConfig(), patients=600, seed=1)
    assert steady[c.PATIENT].nunique() == 600
    assert set(steady.columns) == {c.PATIENT, c.SESSION, c.GOAL, c.TASK, c.BOND}
    assert steady[[c.GOAL, c.TASK, c.BOND]].stack().between(1, 5).all()
    assert ((steady[c.GOAL] * 4) % 1 == 0).all()  # what four 1-5 answers can give
    means = steady.groupby(c.PATIENT)[[c.GOAL, c.TASK, c.BOND]].mean().mean(axis=1)
    assert means.mean() == pytest.approx(clinic[c.TOTAL].clinic_mean, abs=0.1)
    again = steady_cohort(clinic, AnalysisConfig(), patients=600, seed=1)
    pd.testing.assert_frame_equal(steady, again)
