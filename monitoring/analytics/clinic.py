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

    def floor_sd(self, method: str = "robust") -> float:
        """Pooled within-patient SD used as the floor of ``s_used``: ``noise_sd`` ("robust",
        falling back to ``pooled_within_sd`` when it is unknown) or ``pooled_within_sd`` ("anova")."""
        if method == "robust" and self.noise_sd == self.noise_sd:
            return self.noise_sd
        return self.pooled_within_sd

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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicParameters:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so older readers keep working."""
        known = {f.name for f in fields(ScaleParameters)}
        scales = {
            name: ScaleParameters(**{k: v for k, v in values.items() if k in known})
            for name, values in data["scales"].items()
        }
        return cls(
            scales=scales,
            n_patients=int(data.get("n_patients", 0)),
            estimated_at=data.get("estimated_at"),
            version=int(data.get("version", CLINIC_FORMAT_VERSION)),
        )

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
) -> ScaleParameters:
    """Estimate one scale's reference values from per-patient summaries, or use the prior.

    ``SD_ref`` is the SD of all session scores (between + within sums of squares over N-1).
    Level quantiles are taken over patients with at least ``min_sessions`` sessions.
    ``diffs`` are the successive differences within patients (for ``noise_sd``).
    """
    keep = n > 0
    n, mean, ss_within, ceiling = n[keep], mean[keep], ss_within[keep], ceiling[keep]
    n_patients = int(n.size)
    enough = n >= min_sessions
    n_enough = int(enough.sum())
    n_obs = int(n.sum())
    ceiling_share = float(ceiling.mean()) if n_patients else float("nan")
    if n_enough < min_patients:
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
    return ScaleParameters(
        clinic_mean=clinic_mean,
        tau2=tau2,
        sigma2=sigma2,
        pooled_within_sd=math.sqrt(sigma2),
        noise_sd=robust_noise_sd(diffs, trim=trim),
        sd_ref=sd_ref,
        level_q_low=float(q_low),
        level_q_high=float(q_high),
        n_patients=n_patients,
        n_patients_min_sessions=n_enough,
        n_observations=n_obs,
        used_priors=False,
        ceiling_share=ceiling_share,
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
