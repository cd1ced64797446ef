"""Thresholds calibrated to a clinic's false-alarm budget.

A therapist meets false alarms per patient-session, on whatever scale they come from: the union
of the rules is what decides whether the caseload is read. So the budget is stated that way: at
most ``budget`` *attention sessions* (a patient-session with at least one alarm, see
``analysis._alarms``) per 100 sessions of a patient whose alliance is steady.

:func:`calibrate` finds the ``stringency`` (the factor on ``k``, the CUSUM decision interval and
the subscale alarm threshold) at which simulated steady patients of *this clinic* raise attention
at the budget's rate:

1. Steady patients are simulated from the clinic's own estimated values (:func:`steady_cohort`):
   levels from its mean and between-patient variance per scale, each patient's session-to-session
   variance drawn from its fitted variance prior (so some patients are much noisier than
   others), the subscales' within-session correlation implied by the total's and the subscales'
   variances, scores rounded to what four 1-5 items can give and kept within 1-5. No events.
2. The real rules (:func:`monitoring.analytics.analyse`, with the clinic's values) run on them
   for a stringency; the attention rate falls as the stringency rises, and a bisection on the
   same simulated patients (common random numbers) finds the stringency that meets the budget.

The seed is fixed and stored with the result, so a calibration can be repeated exactly; the
Django side stores it with the clinic's estimate (versioned), and ``manage.py estimate_clinics``
refreshes it. Pure numpy/pandas; no Django.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.clinic import ClinicParameters, ScaleParameters
from monitoring.analytics.config import CALIBRATION_FORMAT, AnalysisConfig

#: Layout of :meth:`Calibration.to_dict`; a new version is computed afresh, never reinterpreted.
CALIBRATION_VERSION = CALIBRATION_FORMAT
DEFAULT_SEED = 20261128
#: Simulated steady patients and their therapy lengths (the budget's "6-30 session therapy").
DEFAULT_PATIENTS = 1500
DEFAULT_SESSIONS = (6, 30)
#: Bisection range and steps for the stringency (a factor on the thresholds).
STRINGENCY_RANGE = (0.4, 3.0)
BISECTION_STEPS = 14


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A calibration of one clinic's thresholds to its budget.

    ``stringency`` is the factor on the preset's thresholds; ``rate`` the attention sessions per
    100 sessions of the simulated steady patients at that stringency, and ``ever_share`` the share
    of them raised at least once; ``patients``, ``sessions`` and ``seed`` say what was simulated.
    """

    budget: float
    stringency: float
    rate: float
    ever_share: float
    patients: int
    sessions: int
    seed: int
    k: float = 2.5
    cusum_decision: float = 3.5
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibration | None:
        if not data or int(data.get("version", 0)) != CALIBRATION_VERSION:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def attention_sessions(events: pd.DataFrame) -> pd.DataFrame:
    """The (patient, session) pairs with at least one alarm: what the caseload raises."""
    alarms = events[events[c.ALARM]]
    return alarms[[c.PATIENT, c.SESSION]].astype({c.PATIENT: object}).drop_duplicates()


def attention_rate(events: pd.DataFrame, n_sessions: int) -> float:
    """Attention sessions per 100 sessions."""
    return 100.0 * len(attention_sessions(events)) / n_sessions if n_sessions else float("nan")


def _scale(clinic: ClinicParameters, name: str, config: AnalysisConfig) -> ScaleParameters:
    return clinic.scales.get(name) or config.prior()


def steady_cohort(
    clinic: ClinicParameters,
    config: AnalysisConfig,
    *,
    patients: int = DEFAULT_PATIENTS,
    sessions: tuple[int, int] = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Scores of simulated patients whose alliance is steady, from the clinic's own values.

    One row per session: ``patient``, ``session``, ``goal``, ``task``, ``bond`` (``total`` is their
    mean). See the module docstring for the model.
    """
    rng = np.random.default_rng(seed)
    subs = [_scale(clinic, name, config) for name in c.SUBSCALES]
    total = _scale(clinic, c.TOTAL, config)
    priors = [p.variance_prior(default_df=config.prior_df_default, method=config.spread_floor) for p in subs]
    _, total_var = total.variance_prior(default_df=config.prior_df_default, method=config.spread_floor)
    sub_var = np.array([v for _, v in priors])
    sub_df = float(np.mean([d for d, _ in priors]))
    # Var(total deviation) = mean subscale variance * (1 + 2 c) / 3 for within-session correlation c.
    corr = float(np.clip((3.0 * total_var / sub_var.mean() - 1.0) / 2.0, 0.0, 0.95))
    between_extra = max(float(np.mean([p.tau2 for p in subs])) - total.tau2, 0.0)

    n = rng.integers(sessions[0], sessions[1] + 1, size=patients)
    rows = int(n.sum())
    who = np.repeat(np.arange(patients), n)
    session = np.arange(rows) - np.repeat(np.cumsum(n) - n, n) + 1
    level = rng.normal(total.clinic_mean, math.sqrt(max(total.tau2, 0.0)), size=patients)
    # Each patient's noisiness, shared by the subscales: sigma_i^2 / s0^2 ~ d0 / chi2(d0).
    noisiness = sub_df / rng.chisquare(sub_df, size=patients)
    rho = float(np.clip(total.noise_ar, 0.0, 0.9))
    first = session == 1
    common = _ar1(rng.standard_normal(rows), first, rho)
    out: dict[str, Any] = {c.PATIENT: who, c.SESSION: session}
    for i, name in enumerate(c.SUBSCALES):
        offset = (
            subs[i].clinic_mean - total.clinic_mean + rng.normal(0.0, math.sqrt(between_extra), size=patients)
        )
        sd = np.sqrt(sub_var[i] * noisiness)[who]
        own = _ar1(rng.standard_normal(rows), first, rho)
        latent = (level + offset)[who] + sd * (math.sqrt(corr) * common + math.sqrt(1.0 - corr) * own)
        # A subscale is the mean of four 1-5 answers: quarter points within the scale.
        out[name] = np.clip(np.round(latent * 4.0) / 4.0, config.scale_min, config.scale_max)
    return pd.DataFrame(out)


def _ar1(noise: np.ndarray, first: np.ndarray, rho: float) -> np.ndarray:
    """Independent standard normal draws turned into AR(1) series with the same variance,
    restarting at each patient's first session (rows are sessions in order)."""
    if rho <= 0:
        return noise
    out = noise.copy()
    scale = math.sqrt(1.0 - rho * rho)
    # Vectorised over patients: step through the session index.
    index = np.arange(out.size)
    position = index - np.maximum.accumulate(np.where(first, index, 0))
    for step in range(1, int(position.max()) + 1):
        at = np.flatnonzero(position == step)
        out[at] = rho * out[at - 1] + scale * noise[at]
    return out


def calibrate(
    clinic: ClinicParameters,
    config: AnalysisConfig,
    *,
    budget: float | None = None,
    patients: int = DEFAULT_PATIENTS,
    sessions: tuple[int, int] = DEFAULT_SESSIONS,
    seed: int = DEFAULT_SEED,
) -> Calibration:
    """The stringency at which the clinic's steady patients raise ``budget`` (default
    ``config.budget``) attention sessions per 100 sessions (see the module docstring)."""
    from monitoring.analytics.analysis import analyse  # analysis imports config, not this module

    budget = config.budget if budget is None else budget
    scores = steady_cohort(clinic, config, patients=patients, sessions=sessions, seed=seed)
    n_sessions = len(scores)
    base = replace(config, clinic=clinic, budget=budget)

    def measure(stringency: float) -> tuple[float, float]:
        events = analyse(scores, replace(base, stringency=stringency)).events
        raised = attention_sessions(events)
        return attention_rate(events, n_sessions), raised[c.PATIENT].nunique() / patients

    low, high = STRINGENCY_RANGE
    rate_high, ever_high = measure(high)
    shape: dict[str, Any] = {"k": config.k, "cusum_decision": config.cusum_decision}
    if rate_high > budget:  # even the strictest setting raises too much: take it, and say so
        return Calibration(
            budget=budget, stringency=high, rate=rate_high, ever_share=ever_high,
            patients=patients, sessions=n_sessions, seed=seed, **shape,
        )  # fmt: skip
    best = (high, rate_high, ever_high)
    for _ in range(BISECTION_STEPS):
        mid = math.sqrt(low * high)  # the thresholds act multiplicatively
        rate, ever = measure(mid)
        if rate <= budget:
            high, best = mid, (mid, rate, ever)
        else:
            low = mid
    stringency, rate, ever = best
    return Calibration(
        budget=budget, stringency=round(stringency, 4), rate=rate, ever_share=ever,
        patients=patients, sessions=n_sessions, seed=seed, **shape,
    )  # fmt: skip
