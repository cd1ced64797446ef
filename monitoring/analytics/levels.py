"""Trait-like level and state-like deviation (methods.md section 2).

- Level: the person mean of the scores so far (a retrospective view: it moves as sessions come).
- Empirical-Bayes level: ``lam * mean + (1 - lam) * clinic_mean`` with
  ``lam = tau2 / (tau2 + sigma2 / n)`` (Raudenbush & Bryk 2002, eq. 3.56; Snijders & Bosker 2012,
  section 4.8). It equals the BLUP of a random-intercept model with the same variance components;
  tests compare it with statsmodels' MixedLM.
- Detrended level: per-patient OLS ``x = a + b * session`` (4+ sessions); the state is the
  residual (Curran & Bauer 2011; Wang & Maxwell 2015), and the trait-like level is the intercept
  with session centred at the patient's first session, i.e. the line's value at that session:
  the "early-treatment alliance" of Box 2 in Zilcha-Mano & Fisher (2022) ("the intercept,
  representing early or mid-treatment alliance, depending on how time is centred"). The line at
  the mean session would only repeat the person mean. Detrending matters when the alliance grows
  over treatment (Falkenstrom et al. 2017).

All functions work on observations in output order (patient, scale, session), contiguous per unit,
and use ``np.add.reduceat`` over the unit segments: no per-patient Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class UnitStatistics:
    """Per-unit summaries for the units that have at least one score (``units``)."""

    units: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    ss_within: np.ndarray
    within_sd: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    detrended_level: np.ndarray
    residual_sd: np.ndarray
    first_session: np.ndarray
    last_session: np.ndarray
    last_score: np.ndarray
    ceiling: np.ndarray


def unit_statistics(
    x: np.ndarray,
    session: np.ndarray,
    *,
    n_unit: np.ndarray,
    unit_start: np.ndarray,
    detrend_min_sessions: int,
    scale_max: float,
    work: np.ndarray | None = None,
) -> UnitStatistics:
    """Mean, within SD (ddof 1), OLS slope per session and the rest, for every non-empty unit.

    ``within_sd`` is NaN below 2 sessions; ``slope``, ``detrended_level`` and ``residual_sd``
    (ddof 2) are NaN below ``detrend_min_sessions``. ``ceiling`` is True when every score is
    ``scale_max``. ``work``, a (2, N) float array, is used as scratch space if given (the caller's
    buffers, instead of three fresh full-length temporaries); its contents are overwritten.
    """
    units = np.flatnonzero(n_unit > 0)
    n = n_unit[units]
    starts = unit_start[units]
    if units.size == 0:
        empty = np.empty(0)
        return UnitStatistics(units, n, *(empty,) * 10, np.empty(0, dtype=bool))
    # One pass of sums per unit (values are 1-5 and sessions small, so the textbook
    # sum-of-squares formulas lose nothing that matters here and save full-length temporaries).
    if work is None:
        work = np.empty((2, x.size))
    sess, tmp = work[0], work[1]
    np.copyto(sess, session, casting="same_kind")
    sum_x = np.add.reduceat(x, starts)
    sum_xx = np.add.reduceat(np.multiply(x, x, out=tmp), starts)
    sum_s = np.add.reduceat(sess, starts)
    sum_ss = np.add.reduceat(np.multiply(sess, sess, out=tmp), starts)
    sess *= x
    sum_sx = np.add.reduceat(sess, starts)
    del sess, tmp
    mean = sum_x / n
    mean_s = sum_s / n
    ss = np.maximum(sum_xx - sum_x * mean, 0.0)
    sxx = np.maximum(sum_ss - sum_s * mean_s, 0.0)
    sxy = sum_sx - sum_s * mean
    with np.errstate(invalid="ignore", divide="ignore"):
        within_sd = np.where(n >= 2, np.sqrt(ss / (n - 1)), np.nan)
        enough = (n >= detrend_min_sessions) & (sxx > 1e-9)
        slope = np.where(enough, sxy / sxx, np.nan)
        intercept = mean - slope * mean_s
        detrended = intercept + slope * session[starts]  # the line at the first session
        resid_ss = np.maximum(ss - slope * sxy, 0.0)
        residual_sd = np.where(enough, np.sqrt(resid_ss / (n - 2)), np.nan)
    ends = starts + n - 1
    ceiling = np.minimum.reduceat(x, starts) >= scale_max
    return UnitStatistics(
        units=units,
        n=n,
        mean=mean,
        ss_within=ss,
        within_sd=within_sd,
        slope=slope,
        intercept=intercept,
        detrended_level=detrended,
        residual_sd=residual_sd,
        first_session=session[starts],
        last_session=session[ends],
        last_score=x[ends],
        ceiling=ceiling,
    )


def eb_interval(
    *, level_eb: np.ndarray, lam: np.ndarray, sigma2: np.ndarray, n: np.ndarray, z: float = 1.959964
) -> tuple[np.ndarray, np.ndarray]:
    """The EB level's 95% posterior interval, ``level_eb -/+ z * sqrt(lam * sigma2 / n)``: the
    posterior variance of a random intercept given the variance components (Raudenbush & Bryk
    2002, eq. 3.57; ``1 / (1/tau2 + n/sigma2)`` written with the reliability ``lam``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        half = z * np.sqrt(np.maximum(lam * sigma2 / n, 0.0))
    return level_eb - half, level_eb + half


def eb_weight(*, n: np.ndarray, tau2: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Reliability of a person mean, ``lam = tau2 / (tau2 + sigma2 / n)`` (1 when both are 0)."""
    denom = tau2 + sigma2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tau2 / denom, 1.0)


def eb_level(*, mean: np.ndarray, lam: np.ndarray, clinic_mean: np.ndarray) -> np.ndarray:
    """Empirical-Bayes (shrunken) level, ``lam * mean + (1 - lam) * clinic_mean``."""
    return lam * mean + (1.0 - lam) * clinic_mean


def window_trend(
    x: np.ndarray,
    session: np.ndarray,
    *,
    ends: np.ndarray,
    lengths: np.ndarray,
    window: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS slope per session, its t value and the number of points, over the last ``window``
    observations of each segment (segments end at ``ends`` (exclusive) with ``lengths`` points).

    Vectorised over segments with a (segments, window) index matrix and masks. The t value is
    ``slope / se`` with ``se = sqrt(residual variance / Sxx)``; it is +-inf for a perfect line and
    NaN below 3 points.
    """
    w = np.minimum(lengths, window)
    offsets = np.arange(window)[None, :]
    idx = ends[:, None] - window + offsets
    mask = offsets >= (window - w)[:, None]
    idx = np.where(mask, idx, 0)
    xv = np.where(mask, x[idx], 0.0)
    sv = np.where(mask, session[idx].astype(float), 0.0)
    cnt = w.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xv.sum(axis=1) / cnt
        ms = sv.sum(axis=1) / cnt
        dx = np.where(mask, xv - mx[:, None], 0.0)
        ds = np.where(mask, sv - ms[:, None], 0.0)
        sxx = (ds * ds).sum(axis=1)
        sxy = (ds * dx).sum(axis=1)
        syy = (dx * dx).sum(axis=1)
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
        resid = np.maximum(syy - slope * sxy, 0.0)
        se = np.sqrt(resid / (cnt - 2) / sxx)
        tval = np.where(w >= 3, np.where(se > 0, slope / se, np.sign(slope) * np.inf), np.nan)
    return slope, tval, w
