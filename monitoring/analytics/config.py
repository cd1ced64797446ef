"""Every tunable number of the analytics, with its default and where it comes from.

``AnalysisConfig()`` is the documented default ("standard"). ``AnalysisConfig.preset(name)``
gives the named sensitivity levels a clinic can choose from; any field can still be overridden:
``AnalysisConfig.preset("sensitive", repair_window=4)``. See docs/methods.md for the evidence
behind each default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from monitoring.analytics.clinic import ClinicParameters, ScaleParameters, prior_scale_parameters
from monitoring.analytics.columns import SCALES

#: Two-sided 5% critical values of Student's t by degrees of freedom (Tang & DeRubeis 1999 use
#: 2.776 for 3+3 values, 3.182 with one missing, 4.303 with one missing on each side).
T_CRITICAL: Mapping[int, float] = MappingProxyType(
    {
        1: 12.706,
        2: 4.303,
        3: 3.182,
        4: 2.776,
        5: 2.571,
        6: 2.447,
        7: 2.365,
        8: 2.306,
        9: 2.262,
        10: 2.228,
    }
)

#: Named sensitivity levels -> field overrides. Each is a false-alarm budget: attention sessions
#: (a patient-session with any alarm, on any scale) per 100 sessions of a patient whose alliance
#: is steady. A clinic's estimate calibrates the thresholds to its budget (``stringency``,
#: :mod:`monitoring.analytics.calibration`); the k and CUSUM values here are what applies before
#: a calibration exists, and the shape the calibration scales.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "strict": MappingProxyType({"budget": 0.5, "k": 3.0, "cusum_decision": 4.5}),
        "standard": MappingProxyType({"budget": 1.0, "k": 2.5, "cusum_decision": 3.5}),
        "sensitive": MappingProxyType({"budget": 2.0, "k": 2.0, "cusum_decision": 3.0}),
        # Flags many ordinary dips; for research or very close follow-up only.
        "very_sensitive": MappingProxyType({"budget": 4.0, "k": 1.0, "cusum_decision": 2.5}),
    }
)

#: Scales whose events can put a patient on the caseload by themselves: every kind on the total;
#: a decline on task agreement too (the product's promise, Hoffart et al.); other subscales only
#: explain, unless a rupture there passes ``subscale_alarm_k``.
ALARM_KINDS = ("rupture", "unrepaired", "decline", "sudden_loss")

SpreadRule = Literal["predictive", "floor"]

#: Version of the calibration layout this code reads (monitoring.analytics.calibration).
CALIBRATION_FORMAT = 1

SuddenSpread = Literal["stricter", "window"]
SpreadFloor = Literal["robust", "anova"]
DeclineDuringRupture = Literal["never", "if_drifting", "always"]


@dataclass(frozen=True, kw_only=True)
class AnalysisConfig:
    """Parameters of :func:`monitoring.analytics.analyse`. All scores are on the 1-5 scale.

    Rupture and repair (Stiles et al. 2004; Strauss et al. 2006; Gumz et al. 2012):

    - ``k`` = 2.5: the rupture threshold, as a standard-normal tail: a session is a rupture when it
      falls below the baseline by more than the ``Phi(k)`` quantile of its predictive
      distribution, ``x_t <= baseline - t_q(nu) * s_used * sqrt(1 + 1/n)`` with ``q = Phi(k)``,
      ``nu = prior_df + n - 1`` (``spread_rule`` "predictive"; "floor" is the earlier
      ``x_t <= baseline - k * s_used``). Scaled by ``stringency``.
    - ``spread_rule`` = "predictive": ``s_used`` is the patient's own session-to-session SD shrunk
      towards the clinic's (``s^2 = (d0 * s0^2 + (n - 1) * s_own^2) / (d0 + n - 1)``, the
      posterior of a scaled inverse-chi-square prior fitted to the clinic's patients; Smyth 2004),
      floored at the SEM. "floor" is ``max(own SD, pooled SD, SEM)``.
    - ``prior_df_default`` = 6: ``d0`` while the clinic's estimate has no fitted prior.
    - ``stringency`` = 1: multiplies ``k``, ``cusum_decision`` and ``subscale_alarm_k``; set from
      the clinic's calibration to its ``budget`` (:mod:`monitoring.analytics.calibration`).
    - ``budget`` = 1: the false-alarm budget the thresholds are calibrated to, in attention
      sessions per 100 sessions of a steady patient.
    - ``subscale_alarm_k`` = 3.5: a rupture on goal, task, bond or agreement alone puts the patient
      on the caseload only past this stricter threshold (same predictive form as ``k``).
    - ``decline_restart`` = True: after a decline the baseline restarts at the session's score, so
      a decline that levels off is not flagged again.
    - ``decline_continues`` = 6: a decline or a sudden loss within this many sessions after one of
      the patient's rupture or decline alarms continues that story: it is recorded (the patient
      page shows it) but raises no new alarm. Unrepaired ruptures always raise attention.
    - ``min_baseline`` = 3: baseline sessions needed for that rule; with 1-2 prior sessions the
      drop from the previous session must reach ``max(RC, k * pooled within-patient SD)``.
    - ``previous_sd_factor`` = sqrt(2): with 1-2 prior sessions the drop must reach
      ``max(RC, k * previous_sd_factor * pooled SD)``; sqrt(2) because the drop is a difference of
      two noisy sessions (methods.md has factor 1; see docs/methods.md, "Deviations").
    - ``repair_window`` = 3 (K): sessions after a rupture in which a return to
      ``pre-rupture baseline - s_used`` counts as a repair; otherwise the rupture becomes
      unrepaired at ``t_r + K`` and the baseline restarts from the rupture's sessions.
    - ``repair_tolerance`` = 1.0: a repair is ``x >= pre-rupture baseline - tolerance * s_used``.

    - ``spread_floor`` = "robust": which clinic pooled within-patient SD floors ``s_used`` (and
      the 1-2 session rule): "robust" is ``noise_sd`` (trimmed successive differences),
      "anova" is ``pooled_within_sd`` = sqrt(sigma2) as literally in methods.md. See
      docs/methods.md, "Deviations from methods.md", for why the default is "robust".
    - ``noise_trim`` = 0.10: share of the largest successive differences trimmed by the robust
      estimate.

    Reference quantities (Jacobson & Truax 1991):

    - ``reliability`` = 0.90: scale reliability r for ``SEM = SD_ref * sqrt(1 - r)``;
      ``scale_reliability`` overrides it per scale, e.g. ``{"bond": 0.85}``.
    - ``sd_ref_default`` = 0.6: SD_ref used until the clinic has enough data.

    Declining trend (Page 1954, lower one-sided CUSUM on ``(baseline - x_t) / s_used``):

    - ``cusum_reference`` = 0.5 (k of the CUSUM, in spreads); ``cusum_decision`` = 3.5 (h;
      methods.md has 4, see docs/methods.md "Deviations" for the evidence).
    - ``cusum_prediction_sd`` = True: each deviation is divided by ``s_used * sqrt(1 + 1/n)``,
      the SD of a new session around a baseline mean of n sessions, so early sessions with a
      short, noisy baseline do not add spurious evidence.
    - ``cusum_cap`` = 2.5: one session adds at most ``cap - reference`` to the sum, so a single
      rupture-sized dip (already flagged as a rupture) cannot alone make a "decline"; an
      engineering choice, see docs/methods.md.
    - ``cusum_min_baseline`` = 3: baseline sessions before the CUSUM starts.
    - ``decline_during_rupture`` = "if_drifting": while a rupture is open (from its own session
      until repaired or unrepaired) a decline is raised only if the CUSUM was already above zero
      just before the rupture, i.e. the drop continued a drift; a sudden step down is left to the
      rupture, repair and "unrepaired" flags. "never" and "always" are the alternatives.
    - ``slope_window`` = 5: sessions of the OLS slope quoted in a decline's explanation.

    Sudden gains and losses (Tang & DeRubeis 1999; the suddengains R package):

    - ``sudden_window`` = 3: sessions before/after the jump compared by criterion 3.
    - ``sudden_min_before`` = 2: fewest sessions before the jump.
    - ``sudden_relative`` = None: criterion 2 (dropped by default); a number f requires the jump
      to be at least f times the remaining range (``5 - x_n`` for a gain, ``x_n - 1`` for a loss).
    - ``sudden_spread`` = "stricter": criterion 3 uses ``max(pooled SD of the two windows,
      pooled within-patient SD of the clinic, SEM)``; "window" uses the windows' pooled SD only,
      as in Tang & DeRubeis.

    Levels (Raudenbush & Bryk 2002; Snijders & Bosker 2012; Curran & Bauer 2011):

    - ``prior_clinic_mean`` = 3.9, ``prior_tau2`` = 0.25, ``prior_sigma2`` = 0.09: priors used
      while a scale has fewer than ``min_patients`` = 20 patients with ``min_sessions`` = 3+
      sessions.
    - ``provisional_lambda`` = 0.80: the level is provisional while the EB weight is below it.
    - ``detrend`` = False: if True the ``level`` / ``state`` / ``z`` columns of
      ``analysis.sessions`` use the per-patient OLS line (needs ``detrend_min_sessions`` = 4).
      Flags never depend on it.

    Pattern labels (Zilcha-Mano & Fisher 2022):

    - ``pattern_scale`` = "total"; ``pattern_low_quantile`` = 0.25 and
      ``pattern_high_quantile`` = 0.75 of the clinic's patient levels;
      ``pattern_window`` = 12 most recent sessions for the trend (the level compared is the
      mean of the sessions before them, or the person mean if fewer than 3); ``pattern_trend_t`` = 2.0, the
      t value of the OLS slope needed to call a trend rising or falling;
      ``pattern_min_sessions`` = 4.

    Other:

    - ``scale_min`` = 1, ``scale_max`` = 5: the response scale (ceiling = ``scale_max``).
    - ``clinic``: stored :class:`ClinicParameters`; None means "estimate from the data given".
    - ``sensitivity``: the preset name this config was built from (informational).
    """

    k: float = 2.5
    spread_rule: SpreadRule = "predictive"
    prior_df_default: float = 6.0
    stringency: float = 1.0
    budget: float = 1.0
    subscale_alarm_k: float = 3.5
    decline_restart: bool = True
    decline_continues: int = 6
    min_baseline: int = 3
    previous_sd_factor: float = math.sqrt(2.0)
    repair_window: int = 3
    repair_tolerance: float = 1.0
    spread_floor: SpreadFloor = "robust"
    noise_trim: float = 0.10
    reliability: float = 0.90
    scale_reliability: Mapping[str, float] = field(default_factory=dict)
    sd_ref_default: float = 0.6
    cusum_reference: float = 0.5
    cusum_decision: float = 3.5
    cusum_cap: float = 2.5
    cusum_min_baseline: int = 3
    cusum_prediction_sd: bool = True
    decline_during_rupture: DeclineDuringRupture = "if_drifting"
    slope_window: int = 5
    sudden_window: int = 3
    sudden_min_before: int = 2
    sudden_relative: float | None = None
    sudden_spread: SuddenSpread = "stricter"
    prior_clinic_mean: float = 3.9
    prior_tau2: float = 0.25
    prior_sigma2: float = 0.09
    min_patients: int = 20
    min_sessions: int = 3
    provisional_lambda: float = 0.80
    detrend: bool = False
    detrend_min_sessions: int = 4
    pattern_scale: str = "total"
    pattern_low_quantile: float = 0.25
    pattern_high_quantile: float = 0.75
    pattern_window: int = 12
    pattern_trend_t: float = 2.0
    pattern_min_sessions: int = 4
    scale_min: float = 1.0
    scale_max: float = 5.0
    clinic: ClinicParameters | None = None
    sensitivity: str = "standard"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale_reliability", MappingProxyType(dict(self.scale_reliability)))
        problems = []
        if not self.k > 0:
            problems.append("k must be positive")
        if not self.stringency > 0 or not self.budget > 0:
            problems.append("stringency and budget must be positive")
        if self.spread_rule not in ("predictive", "floor"):
            problems.append("spread_rule must be 'predictive' or 'floor'")
        if not self.prior_df_default > 0:
            problems.append("prior_df_default must be positive")
        if self.repair_window < 1:
            problems.append("repair_window must be at least 1")
        if self.min_baseline < 1:
            problems.append("min_baseline must be at least 1")
        for name, r in {"reliability": self.reliability, **self.scale_reliability}.items():
            if not 0 <= r < 1:
                problems.append(f"reliability of {name} must be in [0, 1)")
        if not 2 <= self.sudden_window <= 6:
            problems.append("sudden_window must be between 2 and 6")
        if not 2 <= self.sudden_min_before <= self.sudden_window:
            problems.append("sudden_min_before must be between 2 and sudden_window")
        if self.decline_during_rupture not in ("never", "if_drifting", "always"):
            problems.append("decline_during_rupture must be 'never', 'if_drifting' or 'always'")
        if self.spread_floor not in ("robust", "anova"):
            problems.append("spread_floor must be 'robust' or 'anova'")
        if not 0 <= self.noise_trim < 0.5:
            problems.append("noise_trim must be in [0, 0.5)")
        if self.sudden_spread not in ("stricter", "window"):
            problems.append("sudden_spread must be 'stricter' or 'window'")
        if self.pattern_scale not in SCALES:
            problems.append(f"pattern_scale must be one of {SCALES}")
        if not self.scale_min < self.scale_max:
            problems.append("scale_min must be below scale_max")
        if self.cusum_min_baseline < 1 or self.slope_window < 2:
            problems.append("cusum_min_baseline >= 1 and slope_window >= 2 required")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AnalysisConfig:
        """Config for a named sensitivity level: "strict", "standard", "sensitive" or
        "very_sensitive" (see :data:`PRESETS`), with optional field overrides."""
        try:
            values = dict(PRESETS[name])
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
        values.update(overrides)
        return cls(sensitivity=name, **values)

    def with_clinic(self, clinic: ClinicParameters | None) -> AnalysisConfig:
        """The same config with other clinic reference values, calibrated to them (see
        :meth:`calibrated`)."""
        return replace(self, clinic=clinic).calibrated()

    def calibrated(self) -> AnalysisConfig:
        """The stringency of the clinic's calibration, when it was made for this budget and
        preset (same k and CUSUM decision interval); the config unchanged otherwise (then the
        preset's uncalibrated thresholds apply until the clinic is estimated again)."""
        cal = self.clinic.calibration if self.clinic is not None else None
        if not cal or int(cal.get("version", 0)) != CALIBRATION_FORMAT:
            return self
        same = (
            math.isclose(float(cal.get("budget", -1)), self.budget)
            and math.isclose(float(cal.get("k", self.k)), self.k)
            and math.isclose(float(cal.get("cusum_decision", self.cusum_decision)), self.cusum_decision)
        )
        return replace(self, stringency=float(cal["stringency"])) if same else self

    @property
    def k_eff(self) -> float:
        """The rupture threshold as applied (``k * stringency``)."""
        return self.k * self.stringency

    @property
    def decision_eff(self) -> float:
        """The CUSUM decision interval as applied (``cusum_decision * stringency``)."""
        return self.cusum_decision * self.stringency

    @property
    def subscale_alarm_k_eff(self) -> float:
        return self.subscale_alarm_k * self.stringency

    def reliability_of(self, scale: str) -> float:
        """Reliability r used for ``scale``."""
        return float(self.scale_reliability.get(scale, self.reliability))

    def prior(self) -> ScaleParameters:
        """The reference values assumed while a scale has too little data."""
        return prior_scale_parameters(
            clinic_mean=self.prior_clinic_mean,
            tau2=self.prior_tau2,
            sigma2=self.prior_sigma2,
            sd_ref=self.sd_ref_default,
            low_quantile=self.pattern_low_quantile,
            high_quantile=self.pattern_high_quantile,
            prior_df=self.prior_df_default,
        )

    def t_critical(self, n_before: int, n_after: int) -> float:
        """Two-sided 5% t critical value for criterion 3 with these window sizes."""
        df = n_before + n_after - 2
        if df in T_CRITICAL:
            return T_CRITICAL[df]
        from scipy.stats import t as student_t

        return float(student_t.ppf(0.975, df))

    def sem(self, scale: str, params: ScaleParameters) -> float:
        """SEM of ``scale`` under ``params`` and this config's reliability."""
        return params.sd_ref * math.sqrt(1.0 - self.reliability_of(scale))
