"""Clinic-level reference quantities: variance components, pooled within-patient SD, SD_ref.

The person-relative rules need a few numbers that one patient's handful of sessions cannot
estimate: how much patients differ from each other (tau2), how much one patient varies from
session to session (sigma2 and its root, the pooled within-patient SD), and how spread the
clinic's session scores are (SD_ref, which fixes the SEM and the reliable change index).

They are estimated from the clinic's data by one-way random-effects ANOVA (method of moments;
Snijders & Bosker 2012, ch. 3; Raudenbush & Bryk 2002, ch. 3) on a schedule, stored with the date,
and passed back into every later analysis with ``AnalysisConfig(clinic=...)``; while the clinic
has fewer than 20 patients with 3+ sessions on a scale the configured priors stand in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

import numpy as np

from monitoring.analytics.columns import SCALES

#: Version of the ``to_dict`` layout, stored alongside the values.
CLINIC_FORMAT_VERSION = 1
_NORMAL_Q75 = 0.6744897501960817  # standard normal quantile at 0.75


@dataclass(frozen=True, kw_only=True)
class ScaleParameters:
    """Clinic reference values for one scale (all in scale points, 1-5, or their squares).

    - ``clinic_mean``: the clinic's mean level (GLS-weighted mean of patient means, the fixed
      intercept of the random-intercept model).
    - ``tau2``: between-patient variance of the true levels; ``sigma2``: within-patient
      (session-to-session) variance. Both from one-way random-effects ANOVA.
    - ``pooled_within_sd``: sqrt(sigma2), the pooled within-patient SD used as a floor of the
      spread in the rupture rule (Gumz et al. 2012).
    - ``noise_sd``: robust pooled session-to-session SD from successive differences (trimmed
      mean square successive difference, see :func:`robust_noise_sd`); the default floor of the
      spread in the flag rules, because ruptures, level shifts and growth inflate
      ``pooled_within_sd`` (docs/methods.md, "Deviations from methods.md").
    - ``sd_ref``: SD of all session scores across the clinic (fixes SEM and RC; Jacobson &
      Truax 1991).
    - ``level_q_low`` / ``level_q_high``: quantiles of patient levels used by the pattern labels.
    - ``n_patients`` / ``n_patients_min_sessions`` / ``n_observations``: what the estimate
      rests on; ``used_priors``: True when the priors were used instead (too few patients).
    - ``ceiling_share``: share of patients whose every rating on this scale is the maximum.
    - ``prior_df`` / ``prior_var``: the clinic's distribution of within-patient (session-to-session)
      variances as a scaled inverse-chi-square prior, ``sigma_i^2 ~ prior_df * prior_var /
      chi2(prior_df)`` (fitted by :func:`fit_variance_prior`). Each patient's own variance is
      shrunk towards ``prior_var`` with the weight of ``prior_df`` sessions (docs/methods.md,
      "Spread"). NaN in estimates stored before they existed: then the floor SD and the
      configured default df stand in.
    - ``noise_ar``: lag-1 autocorrelation of the session-to-session noise (0 when unknown), for
      the calibration's simulated steady patients (:func:`noise_autocorrelation`).
    """

    clinic_mean: float
    tau2: float
    sigma2: float
    pooled_within_sd: float
    sd_ref: float
    level_q_low: float
    level_q_high: float
    n_patients: int = 0
    n_patients_min_sessions: int = 0
    n_observations: int = 0
    used_priors: bool = True
    ceiling_share: float = float("nan")
    noise_sd: float = float("nan")
    prior_df: float = float("nan")
    prior_var: float = float("nan")
    noise_ar: float = 0.0

    def floor_sd(self, method: str = "robust") -> float:
        """Pooled within-patient SD used as the floor of ``s_used``: ``noise_sd`` ("robust",
        falling back to ``pooled_within_sd`` when it is unknown) or ``pooled_within_sd`` ("anova")."""
        if method == "robust" and self.noise_sd == self.noise_sd:
            return self.noise_sd
        return self.pooled_within_sd

    def variance_prior(self, *, default_df: float, method: str = "robust") -> tuple[float, float]:
        """(df, variance) of the within-patient variance prior; the floor SD squared and
        ``default_df`` when the estimate has none."""
        if self.prior_var == self.prior_var and self.prior_df == self.prior_df:
            return self.prior_df, self.prior_var
        return default_df, self.floor_sd(method) ** 2

    def sem(self, reliability: float) -> float:
        """Standard error of measurement, ``SD_ref * sqrt(1 - r)`` (Jacobson & Truax 1991)."""
        return self.sd_ref * math.sqrt(1.0 - reliability)

    def rc(self, reliability: float) -> float:
        """Reliable change threshold, ``1.96 * sqrt(2) * SEM`` (Jacobson & Truax 1991)."""
        return 1.96 * math.sqrt(2.0) * self.sem(reliability)


@dataclass(frozen=True, kw_only=True)
class ClinicParameters:
    """Reference values for every scale, as estimated (or assumed) for one clinic.

    ``estimated_at`` is left for the caller (the Django side stamps the date it stores);
    ``analyse`` is a pure function and never reads the clock.
    """

    scales: Mapping[str, ScaleParameters]
    n_patients: int = 0
    estimated_at: str | None = None
    version: int = CLINIC_FORMAT_VERSION
    #: The thresholds' calibration to a false-alarm budget
    #: (:class:`monitoring.analytics.calibration.Calibration` as a dict), or None.
    calibration: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # A read-only view, so a frozen instance stays frozen.
        object.__setattr__(self, "scales", MappingProxyType(dict(self.scales)))

    def __getitem__(self, scale: str) -> ScaleParameters:
        return self.scales[scale]

    @property
    def used_priors(self) -> bool:
        """True if any scale fell back to the configured priors."""
        return any(p.used_priors for p in self.scales.values())

    @property
    def ceiling_share(self) -> float:
        """Share of ceiling raters on the total scale (every total score at the maximum)."""
        total = self.scales.get("total")
        return float("nan") if total is None else total.ceiling_share

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats, ints, bools, strings; NaN stays NaN, so use allow_nan)."""
        return {
            "version": self.version,
            "estimated_at": self.estimated_at,
            "n_patients": self.n_patients,
            "scales": {name: asdict(p) for name, p in self.scales.items()},
            "calibration": dict(self.calibration) if self.calibration else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicParameters:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so older readers keep working."""
        defaults = {f.name: f.default for f in fields(ScaleParameters)}

        def value(key: str, v: Any) -> Any:
            # NaN stored as null (JSON columns refuse NaN) reads back as NaN.
            return float("nan") if v is None and isinstance(defaults[key], float) else v

        scales = {
            name: ScaleParameters(**{k: value(k, v) for k, v in values.items() if k in defaults})
            for name, values in data["scales"].items()
        }
        return cls(
            scales=scales,
            n_patients=int(data.get("n_patients", 0)),
            estimated_at=data.get("estimated_at"),
            version=int(data.get("version", CLINIC_FORMAT_VERSION)),
            calibration=data.get("calibration"),
        )

    def calibrated(self, calibration: Mapping[str, Any]) -> ClinicParameters:
        """A copy carrying a calibration of its thresholds."""
        return replace(self, calibration=dict(calibration))

    def stamped(self, estimated_at: str) -> ClinicParameters:
        """A copy carrying the date it was estimated (ISO 8601 string)."""
        return replace(self, estimated_at=estimated_at)


def prior_scale_parameters(
    *,
    clinic_mean: float,
    tau2: float,
    sigma2: float,
    sd_ref: float,
    low_quantile: float = 0.25,
    high_quantile: float = 0.75,
    prior_df: float = float("nan"),
) -> ScaleParameters:
    """Reference values assumed before a clinic has enough data (the configured priors)."""
    tau = math.sqrt(tau2)
    return ScaleParameters(
        clinic_mean=clinic_mean,
        tau2=tau2,
        sigma2=sigma2,
        pooled_within_sd=math.sqrt(sigma2),
        noise_sd=math.sqrt(sigma2),
        sd_ref=sd_ref,
        level_q_low=clinic_mean + _normal_quantile(low_quantile) * tau,
        level_q_high=clinic_mean + _normal_quantile(high_quantile) * tau,
        used_priors=True,
        prior_df=prior_df,
        prior_var=sigma2 if prior_df == prior_df else float("nan"),
    )


def _normal_quantile(p: float) -> float:
    # Only the quartiles are used in practice; avoid importing scipy for them.
    if math.isclose(p, 0.25):
        return -_NORMAL_Q75
    if math.isclose(p, 0.75):
        return _NORMAL_Q75
    if math.isclose(p, 0.5):
        return 0.0
    from scipy.stats import norm

    return float(norm.ppf(p))


def one_way_anova(
    *,
    n: np.ndarray,
    mean: np.ndarray,
    ss_within: np.ndarray,
) -> tuple[float, float, float]:
    """Variance components of the one-way random-effects model ``x_it = mu + u_i + e_it``.

    Method of moments for unbalanced groups (Snijders & Bosker 2012, eq. 3.11-3.14):
    ``sigma2 = MSW``, ``tau2 = max(0, (MSB - MSW) / n0)`` with
    ``n0 = (N - sum(n_i^2) / N) / (g - 1)``. Returns ``(clinic_mean, tau2, sigma2)`` where the
    clinic mean is the GLS (precision-weighted) mean of the patient means, i.e. the fixed
    intercept a random-intercept model would estimate with these components.

    ``n``, ``mean`` and ``ss_within`` are per patient (count, mean and within sum of squares).
    """
    g = n.size
    total_n = float(n.sum())
    grand = float((n * mean).sum() / total_n)
    df_within = total_n - g
    sigma2 = float(ss_within.sum() / df_within) if df_within > 0 else float("nan")
    if g > 1:
        msb = float((n * (mean - grand) ** 2).sum() / (g - 1))
        n0 = (total_n - float((n * n).sum()) / total_n) / (g - 1)
        tau2 = max(0.0, (msb - sigma2) / n0) if n0 > 0 else 0.0
    else:
        tau2 = 0.0
    if tau2 > 0 and sigma2 == sigma2:
        w = 1.0 / (tau2 + sigma2 / n)
        clinic_mean = float((w * mean).sum() / w.sum())
    else:
        clinic_mean = grand
    return clinic_mean, tau2, sigma2


def robust_noise_sd(diffs: np.ndarray, *, trim: float = 0.10) -> float:
    """Session-to-session SD from successive differences, robust to trends and rare jumps.

    ``sigma^2 = mean(d^2 over the (1 - trim) smallest |d|) / (2 c)``: the mean square successive
    difference (von Neumann et al. 1941), which removes slow trends and level differences, with
    the largest ``trim`` share of differences (the jumps in and out of ruptures, level shifts)
    trimmed, and ``c = 1 - 2 a phi(a) / p`` the normal-theory consistency factor for keeping the
    central share ``p = 1 - trim`` (``a`` its two-sided quantile). NaN without differences.
    """
    d = np.abs(diffs[~np.isnan(diffs)])
    if d.size == 0:
        return float("nan")
    keep = max(1, math.floor((1.0 - trim) * d.size))
    kept = np.partition(d, keep - 1)[:keep] if keep < d.size else d
    p = keep / d.size
    if p < 1.0:
        nd = NormalDist()
        a = nd.inv_cdf((1.0 + p) / 2.0)
        consistency = 1.0 - 2.0 * a * nd.pdf(a) / p
    else:
        consistency = 1.0
    return math.sqrt(float(np.mean(kept * kept)) / (2.0 * consistency))


def fit_variance_prior(variance: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """Fit a scaled inverse-chi-square prior to per-patient variance estimates (Smyth 2004).

    Each ``variance[i]`` estimates the patient's own sigma_i^2 with ``df[i]`` degrees of freedom;
    under ``sigma_i^2 ~ s0^2 * d0 / chi2(d0)`` the estimate over ``s0^2`` follows an F(df_i, d0)
    distribution. Method of moments on the log scale, as limma's ``fitFDist``: with
    ``e_i = log(v_i) - digamma(df_i / 2) + log(df_i / 2)``, ``var(e) - mean(trigamma(df_i / 2)) =
    trigamma(d0 / 2)`` gives ``d0``, and ``mean(e) = log(s0^2) - digamma(d0 / 2) + log(d0 / 2)``
    gives ``s0^2``. Zero variances (ceiling raters) and ``df < 1`` are left out. Returns
    ``(d0, s0^2)``; d0 is capped at 1000 (all patients alike), NaN without enough patients (3).

    Reference: Smyth GK (2004). Linear models and empirical Bayes methods for assessing
    differential expression in microarray experiments. Stat Appl Genet Mol Biol 3(1), art. 3.
    """
    from scipy.special import digamma, polygamma

    keep = (variance > 0) & (df >= 1) & np.isfinite(variance)
    v, d = variance[keep], df[keep]
    if v.size < 3:
        return float("nan"), float("nan")
    e = np.log(v) - digamma(d / 2.0) + np.log(d / 2.0)
    # Patients with a rupture, a decline or a level shift have larger variances than their
    # session-to-session noise, and patients at the ceiling of the scale (a stray 4 among 5s)
    # far smaller ones: neither is what a steady patient's spread looks like (the ceiling is
    # covered by the SEM floor). Leave out log variances more than 3 robust SDs from the median
    # before fitting.
    centre = float(np.median(e))
    spread = 1.4826 * float(np.median(np.abs(e - centre)))
    if spread > 0:
        kept = np.abs(e - centre) <= 3.0 * spread
        e, d = e[kept], d[kept]
    e_mean = float(e.mean())
    excess = float(e.var(ddof=1) - polygamma(1, d / 2.0).mean())
    d0 = 1000.0 if excess <= 1e-06 else min(1000.0, 2.0 * _trigamma_inverse(excess))
    s0_sq = math.exp(e_mean + float(digamma(d0 / 2.0)) - math.log(d0 / 2.0))
    return d0, s0_sq


def _trigamma_inverse(y: float) -> float:
    """x with trigamma(x) = y, by Newton's method on 1/trigamma (Smyth 2004, appendix)."""
    from scipy.special import polygamma

    if y > 1e7:
        return 1.0 / math.sqrt(y)
    if y < 1e-6:
        return 1.0 / y
    x = 0.5 + 1.0 / y
    for _ in range(50):
        tri = float(polygamma(1, x))
        step = tri * (1.0 - tri / y) / float(polygamma(2, x))
        x += step
        if -step / x < 1e-8:
            break
    return x


def unit_noise_variance(diff_sq_sum: np.ndarray, n_diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's session-to-session variance from successive differences, and its df.

    ``v = sum(d^2) / (2 k)`` over the k differences between successive completed sessions (von
    Neumann's mean square successive difference: a sustained level shift or a trend barely moves
    it, unlike the variance around the mean). Under normal noise its sampling variance gives the
    equivalent degrees of freedom ``2 k^2 / (3 k - 1)`` (von Neumann 1941); NaN below 2 differences.
    """
    k = n_diffs.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(k >= 2, diff_sq_sum / (2.0 * k), np.nan)
        df = np.where(k >= 2, 2.0 * k * k / (3.0 * k - 1.0), np.nan)
    return v, df


def noise_autocorrelation(diffs: np.ndarray, who: np.ndarray, cutoff: float) -> float:
    """Lag-1 autocorrelation of the session-to-session noise, from successive differences.

    For AR(1) noise with autocorrelation rho, successive differences d_t = x_t - x_{t-1} have
    ``corr(d_t, d_{t+1}) = -(1 - rho) / 2`` (-1/2 for independent sessions), whatever the
    patient's level; so ``rho = 1 + 2 r`` from the pooled correlation r of adjacent differences of
    the same patient. Differences beyond ``cutoff`` (jumps into or out of ruptures) are left out.
    Trends and declines in the data push it up, so on a clinic's mixed data it errs towards more
    autocorrelation, which makes a calibration stricter, not looser. Clipped to [0, 0.9]; 0 when
    there are fewer than 30 pairs.
    """
    keep = np.abs(diffs) <= cutoff if cutoff == cutoff else np.ones(diffs.size, dtype=bool)
    a, b = diffs[:-1], diffs[1:]
    pair = (who[:-1] == who[1:]) & keep[:-1] & keep[1:]
    if int(pair.sum()) < 30:
        return 0.0
    a, b = a[pair], b[pair]
    denom = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    if denom == 0:
        return 0.0
    return float(np.clip(1.0 + 2.0 * float(np.sum(a * b)) / denom, 0.0, 0.9))


def _blend(own: float, prior: float, weight: float) -> float:
    if own != own:
        return prior
    if prior != prior:
        return own
    return weight * own + (1.0 - weight) * prior


def estimate_scale(
    *,
    n: np.ndarray,
    mean: np.ndarray,
    ss_within: np.ndarray,
    ceiling: np.ndarray,
    diffs: np.ndarray,
    min_patients: int,
    min_sessions: int,
    prior: ScaleParameters,
    low_quantile: float,
    high_quantile: float,
    trim: float = 0.10,
    unit_variance: np.ndarray | None = None,
    unit_df: np.ndarray | None = None,
    noise_ar: float = 0.0,
    noise_sd: float | None = None,
) -> ScaleParameters:
    """Estimate one scale's reference values from per-patient summaries, leaning on the prior
    while the clinic is young.

    ``SD_ref`` is the SD of all session scores (between + within sums of squares over N-1).
    Level quantiles are taken over patients with at least ``min_sessions`` sessions.
    ``diffs`` are the successive differences within patients (for ``noise_sd``);
    ``unit_variance`` and ``unit_df`` each patient's session-to-session variance and its degrees of
    freedom (for the variance prior, :func:`fit_variance_prior`). ``noise_sd``, when given, is
    ``robust_noise_sd(diffs, trim=trim)`` already computed by the caller.

    While the clinic has fewer than ``min_patients`` patients of ``min_sessions``+ sessions
    (``g`` of them), each value is the weighted mean ``w * own + (1 - w) * prior`` with
    ``w = g / min_patients``: a clinic's first patients move its values a little, and from
    ``min_patients`` on its own data alone count (methods.md section 2). Below 2 such patients the
    prior is used as it is. The prior is the configured one, or (on the Django side) the pooled
    estimate of the deployment's other clinics.
    """
    keep = n > 0
    n, mean, ss_within, ceiling = n[keep], mean[keep], ss_within[keep], ceiling[keep]
    n_patients = int(n.size)
    enough = n >= min_sessions
    n_enough = int(enough.sum())
    n_obs = int(n.sum())
    ceiling_share = float(ceiling.mean()) if n_patients else float("nan")
    if n_enough < 2:
        return replace(
            prior,
            n_patients=n_patients,
            n_patients_min_sessions=n_enough,
            n_observations=n_obs,
            used_priors=True,
            ceiling_share=ceiling_share,
        )
    clinic_mean, tau2, sigma2 = one_way_anova(n=n, mean=mean, ss_within=ss_within)
    grand = float((n * mean).sum() / n_obs)
    ss_total = float(ss_within.sum() + (n * (mean - grand) ** 2).sum())
    sd_ref = math.sqrt(ss_total / (n_obs - 1))
    q_low, q_high = np.quantile(mean[enough], [low_quantile, high_quantile])
    prior_df, prior_var = (
        fit_variance_prior(unit_variance, unit_df)
        if unit_variance is not None and unit_df is not None
        else (float("nan"), float("nan"))
    )
    own = ScaleParameters(
        clinic_mean=clinic_mean,
        tau2=tau2,
        sigma2=sigma2,
        pooled_within_sd=math.sqrt(sigma2),
        noise_sd=robust_noise_sd(diffs, trim=trim) if noise_sd is None else noise_sd,
        sd_ref=sd_ref,
        level_q_low=float(q_low),
        level_q_high=float(q_high),
        n_patients=n_patients,
        n_patients_min_sessions=n_enough,
        n_observations=n_obs,
        used_priors=False,
        ceiling_share=ceiling_share,
        prior_df=prior_df,
        prior_var=prior_var,
        noise_ar=noise_ar,
    )
    if n_enough >= min_patients:
        return own
    w = n_enough / min_patients
    blended = {
        name: _blend(getattr(own, name), getattr(prior, name), w)
        for name in (
            "clinic_mean",
            "tau2",
            "sigma2",
            "noise_sd",
            "sd_ref",
            "level_q_low",
            "level_q_high",
            "prior_df",
            "noise_ar",
        )
    }
    # Variances blend on the log scale (a variance twice the prior's and half of it are
    # equally far from it).
    own_var, prior_var_ = own.prior_var, prior.prior_var
    if own_var == own_var and prior_var_ == prior_var_ and own_var > 0 and prior_var_ > 0:
        blended["prior_var"] = math.exp(w * math.log(own_var) + (1 - w) * math.log(prior_var_))
    else:
        blended["prior_var"] = _blend(own_var, prior_var_, w)
    return replace(
        own,
        **blended,  # type: ignore[arg-type]
        pooled_within_sd=math.sqrt(blended["sigma2"]),
        used_priors=n_enough < min_patients,
    )


def known_case_clinic(
    *,
    pooled_within_sd: float = 0.19,
    sd_ref: float = 0.6,
    clinic_mean: float = 3.9,
    tau2: float = 0.25,
) -> ClinicParameters:
    """The clinic of methods.md's known test cases (SEM 0.19, RC 0.526, pooled SD 0.19).

    Handy for examples and tests: every scale gets the same values.
    """
    sp = prior_scale_parameters(
        clinic_mean=clinic_mean,
        tau2=tau2,
        sigma2=pooled_within_sd**2,
        sd_ref=sd_ref,
    )  # noise_sd = pooled_within_sd, so both floor methods give the case's 0.19
    return ClinicParameters(scales=dict.fromkeys(SCALES, sp))
