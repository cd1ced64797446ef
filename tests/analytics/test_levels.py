"""Trait-like levels: person mean, empirical Bayes (checked against statsmodels MixedLM),
detrending, and the clinic's variance components."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import AnalysisConfig, analyse
from monitoring.analytics import columns as c
from monitoring.analytics.clinic import one_way_anova, robust_noise_sd
from monitoring.analytics.simulate import simulate_cohort
from tests.analytics.conftest import one_patient


@pytest.mark.parametrize(("scale", "seed"), [(c.TOTAL, 1), (c.TASK, 2), (c.BOND, 3)])
def test_eb_levels_agree_with_mixedlm_blups(scale: str, seed: int) -> None:
    import statsmodels.formula.api as smf

    cohort = simulate_cohort(80, seed=seed, sessions=(3, 20))
    analysis = analyse(cohort.scores)
    assert not analysis.clinic[scale].used_priors
    data = analysis.sessions[analysis.sessions[c.SCALE] == scale][[c.PATIENT, c.SCORE]].copy()
    data[c.PATIENT] = data[c.PATIENT].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("score ~ 1", data, groups=data[c.PATIENT]).fit(reml=True)
    intercept = float(fit.fe_params["Intercept"])
    blup = pd.Series({p: intercept + float(re.iloc[0]) for p, re in fit.random_effects.items()})
    levels = analysis.levels[analysis.levels[c.SCALE] == scale].copy()
    levels[c.PATIENT] = levels[c.PATIENT].astype(str)
    ours = levels.set_index(c.PATIENT)[c.LEVEL_EB]
    diff = (ours - blup.reindex(ours.index)).abs()
    assert diff.max() < 0.05, diff.describe()
    # The variance components themselves are close too (method of moments vs REML).
    assert analysis.clinic[scale].sigma2 == pytest.approx(float(fit.scale), rel=0.1)
    assert analysis.clinic[scale].tau2 == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=0.25)


def test_one_way_anova_recovers_known_components() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(3, 30, 2000)
    u = rng.normal(0, 0.5, n.size)
    means, ss = [], []
    for size, ui in zip(n, u, strict=True):
        x = 4 + ui + rng.normal(0, 0.3, size)
        means.append(x.mean())
        ss.append(((x - x.mean()) ** 2).sum())
    mean, tau2, sigma2 = one_way_anova(n=n.astype(float), mean=np.array(means), ss_within=np.array(ss))
    assert mean == pytest.approx(4.0, abs=0.03)
    assert tau2 == pytest.approx(0.25, rel=0.1)
    assert sigma2 == pytest.approx(0.09, rel=0.05)


def test_robust_noise_sd_ignores_rare_jumps() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.2 * np.sqrt(2), 20000)
    d[:1000] += 1.2  # 5% jumps in and out of ruptures
    assert robust_noise_sd(d) == pytest.approx(0.2, rel=0.12)
    assert robust_noise_sd(d[1000:]) == pytest.approx(0.2, rel=0.03)
    assert np.sqrt(np.mean(d**2) / 2) > 0.26  # the untrimmed MSSD estimate is inflated


def test_detrended_level_and_slope_need_four_sessions() -> None:
    levels = analyse(one_patient([3.0, 3.5, 4.0])).levels
    assert len(levels) == len(c.SCALES)
    assert levels[c.SLOPE].isna().all() and levels[c.DETRENDED_LEVEL].isna().all()
    levels = analyse(one_patient([3.0, 3.5, 4.0, 4.5])).levels
    total = levels[levels[c.SCALE] == c.TOTAL].iloc[0]
    assert total[c.SLOPE] == pytest.approx(0.5)
    # The trait-like level of detrending is the intercept with session centred at the first
    # session (Box 2 of Zilcha-Mano & Fisher): the line's value at session 1, not the mean.
    assert total[c.DETRENDED_LEVEL] == pytest.approx(3.0)
    assert total[c.LEVEL] == pytest.approx(3.75)
    later = analyse(one_patient([3.0, 3.5, 4.0, 4.5], first_session=5)).levels
    assert later[later[c.SCALE] == c.TOTAL][c.DETRENDED_LEVEL].iloc[0] == pytest.approx(3.0)
    assert total[c.RESIDUAL_SD] == pytest.approx(0.0, abs=1e-7)


def test_detrend_option_makes_state_the_residual_from_the_trend() -> None:
    scores = [3.0, 3.5, 4.0, 4.5, 5.0]
    plain = analyse(one_patient(scores)).sessions
    detr = analyse(one_patient(scores), AnalysisConfig(detrend=True)).sessions
    plain_t = plain[plain[c.SCALE] == c.TOTAL]
    detr_t = detr[detr[c.SCALE] == c.TOTAL]
    assert plain_t[c.STATE].abs().max() == pytest.approx(1.0)
    assert detr_t[c.STATE].abs().max() == pytest.approx(0.0, abs=1e-9)
    assert detr_t[c.LEVEL].tolist() == pytest.approx(scores)
    # Flags never depend on the detrend option.
    pd.testing.assert_frame_equal(
        analyse(one_patient(scores)).events,
        analyse(one_patient(scores), AnalysisConfig(detrend=True)).events,
    )


def test_z_uses_the_patients_own_spread_floored_at_the_sem() -> None:
    sessions = analyse(one_patient([4.0, 4.0, 4.0, 5.0])).sessions
    total = sessions[sessions[c.SCALE] == c.TOTAL]
    sd = np.std([4.0, 4.0, 4.0, 5.0], ddof=1)
    assert total[c.Z].iloc[-1] == pytest.approx(0.75 / sd)
    flat = analyse(one_patient([5.0, 5.0, 5.0])).sessions
    assert len(flat) == 3 * len(c.SCALES)
    assert (flat[c.Z] == 0).all()


def test_ceiling_raters_are_marked() -> None:
    frame = pd.concat([one_patient([5.0] * 6, patient="c"), one_patient([5.0, 4.75, 5.0, 5.0], patient="n")])
    analysis = analyse(frame)
    levels = analysis.levels[analysis.levels[c.SCALE] == c.TOTAL].set_index(c.PATIENT)
    assert bool(levels.loc["c", c.CEILING]) and not bool(levels.loc["n", c.CEILING])
    summary = analysis.summary.set_index(c.SCALE)
    assert summary.loc[c.TOTAL, "ceiling_share"] == 0.5
    assert analysis.events.empty  # one stray 4 of a ceiling rater raises nothing
