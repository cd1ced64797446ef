"""A second, independent simulated clinic: latent AR(1) states and a graded-response item model.

The accuracy claims of the analytics are checked on cohorts from
:mod:`monitoring.analytics.simulate`. A method judged only on the simulator it was tuned on can
flatter itself, so this module generates cohorts with a different structure and the same output
(:class:`~monitoring.analytics.simulate.SimulatedCohort`). Pure numpy/pandas, no Django,
deterministic for a seed, vectorised over patients (10,000 patients x 30 sessions take about
2.5 s, 10,000 patients x 6-30 sessions about 1.5 s).

Generative model
----------------
Latent scores are on a continuous scale whose unit is one answer category: the item thresholds
sit near 1.5, 2.5, 3.5 and 4.5, so a latent score of 4 means "answers mostly 4".

- **Patient**: a latent trait ``theta`` ~ N(3.98, 0.50) (calibrated so that the observed total
  levels of a clinic have mean about 3.95 and between-patient SD about 0.5; the ceiling
  compresses the upper tail, so the observed distribution is skewed to the left as in real WAI-SR
  data), fixed subscale offsets ~ N(0, 0.20) and fixed patient-item offsets ~ N(0, 0.30) (the
  patient's habit of answering one item higher or lower than the others, which keeps an item's
  answer stable from session to session). Ceiling raters have a response style: 1.5-3 extra
  latent units on every item, so they answer 5 to nearly everything.
- **Session state**: a common AR(1) process per patient (``rho`` ~ U(0, 0.5), carried over missed
  sessions as ``rho ** gap``) shared by the three subscales, plus an independent subscale-specific
  AR(1) part with half its SD.
- **Answers**: a graded response (cumulative logit) model per item, with fixed per-item
  discriminations (9.5-13.5 logits per category unit) and per-item thresholds:
  ``P(answer >= c) = logistic(a_j * (latent_j - b_jc))``, one uniform draw per answer (inverse CDF).
  Answers are whole numbers 1-5 drawn from category probabilities, never a rounded continuous
  value; ceiling effects arise from the top threshold.
- **Events** are planted in *observed points*: for each patient and subscale the expected
  observed subscale score as a function of the latent score is tabulated (the item model in
  closed form, with the patient's own offsets), and a planted course ("1.2 points below the
  usual level") is turned into latent scores by inverting that table. So a planted drop of 1.2
  is an expected observed drop of 1.2, whatever the patient's level, except where it would leave
  the 1-5 range (targets are kept within 1.05-4.95; event patients are drawn with room, see below).

Calibration of ``session_sd``
-----------------------------
``session_sd=(lo, hi)``: each patient draws a target SD log-uniformly in that range; it is the
expected within-patient SD of the observed total (mean of the 12 answers) of a stable patient over
their completed sessions. The latent SD that achieves it is solved per patient (fixed-point
iteration with Gauss-Hermite quadrature over the tabulated item model): the observed variance is
the variance of the expected total over the latent state, times the finite-sample factor of an
AR(1) series of that length, plus the item-response variance (which alone gives an SD of about
0.085, 0.04-0.12, for a patient below 4.8, less near the ceiling). A target below that response
floor is met with no latent movement at all (about no patient for lo >= 0.12); the latent SD is
capped at 1.5 units (reached by no patient for hi <= 0.5). Ceiling raters get a
latent SD equal to their target, which their ceiling hides: their observed SD stays near 0.

Achieved observed within-patient SD of stable patients' totals (sample SD over each patient's
completed sessions; 4,000 stable patients, seed 0):

==============  ========  =====  =====  ======  =====  =====  ===========  ============
``session_sd``  sessions   p10    p25   median   p75    p90   pooled (rms)  target (rms)
==============  ========  =====  =====  ======  =====  =====  ===========  ============
(0.12, 0.30)    6-30      0.116  0.141  0.182   0.234  0.283  0.203        0.201
(0.12, 0.30)    20-30     0.123  0.146  0.183   0.232  0.277
(0.30, 0.50)    6-30      0.264  0.314  0.372   0.442  0.508  0.393        0.393
(0.30, 0.50)    20-30     0.282  0.324  0.377   0.437  0.493
==============  ========  =====  =====  ======  =====  =====  ===========  ============

The pooled within-patient SD (root mean within-patient variance) equals the targets' root mean
square: that is what is calibrated. The drawn targets have medians 0.187 and 0.384; the sample SD
of a short series scatters around its target (and its median is a few per cent below it), so the
outer quantiles of the observed SDs sit a little outside the requested range (81% and 69% of
patients inside it with 6-30 sessions, 87% and 75% with 20-30).

Missing data and episode length
-------------------------------
``missing_sessions``: each scheduled session after the first is missed with that probability
(geometric gaps), so session numbers have gaps; ``n_sessions`` counts *completed* sessions and
events are placed on completed sessions. ``missing_items``: each answer is missing (NaN) with that
probability, at most 2 of 12 per session (extra ones are answered). ``short_share``: that share of
episodes has 4-6 sessions. An episode too short for its planted event to be observed is lengthened
to the scenario's minimum in :data:`MIN_SESSIONS` (``u_shape``: the dip width plus 6), so short
episodes come only from scenarios without an onset or with a small minimum.

Room for events: ruptures are planted at completed session 4 or later (3 baseline sessions)
with at least 3 completed sessions after the low period of a repaired rupture, or after the onset
of an unrepaired one (the repair window K = 3 is seen);
declines and falls at session 4 or later with 6 (``task_decline``, ``high_falling``) or 8
(``slow_decline``) sessions after; sudden gains with 3 sessions before and 3 from the step on.
Patients with drops or declines get a trait with room for them (lowest subscale at least
magnitude + 1.4, or 1.6 + 8 sessions of decline); continuing falls start late enough to stay above
1.6 points.

Truth: ``trait`` is the patient's expected observed total at their baseline latent score (no
event, no noise): the pre-step level of a sudden gain, the start of ``low_rising``, the mid-course
level of ``growth``, about 5 for ceiling raters (drawn with every subscale at 4.8 or more).
``onset`` is a session number (of a completed session): the first low session of a rupture, the
last session before a decline, fall or U-shaped dip, the first session at the new level of a
sudden gain; missing (``<NA>``) for stable, ceiling, growth and low_rising. ``duration`` is the
number of low completed sessions of a repaired rupture. ``magnitude`` is the planted size in
points (drop, step, dip depth) or points per session (trends; task points for ``task_decline``).
``session_sd`` is the patient's drawn target SD and ``rho`` the AR(1) autocorrelation.

The therapist-rated parallel form follows the same latent course with half its movement
(planted events and state noise), a level 0.3 lower, half the subscale offsets and its own item
offsets; therapists answer every item.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics.columns import BOND, GOAL, PATIENT, SESSION, TASK
from monitoring.analytics.scoring import ITEM_PREFIX, WAI_SR_SUBSCALES, score_items_wide
from monitoring.analytics.simulate import SCENARIO, SimulatedCohort

__all__ = [
    "DEFAULT_SCENARIOS",
    "ITEM_COLUMNS",
    "MIN_SESSIONS",
    "SCENARIOS",
    "SimulatedCohort",
    "simulate_ordinal_cohort",
]

#: Scenario -> what is planted (all sizes in observed points on the 1-5 scale).
SCENARIOS: Mapping[str, str] = MappingProxyType(
    {
        "stable": "trait level plus AR(1) state noise, nothing planted",
        "ceiling": "a ceiling response style: answers 5 to nearly every item",
        "growth": "rises 0.02-0.05 points per session throughout (the trait is the mid-course level)",
        "rupture_repair": "drop of 1.0-1.5 points at `onset` for `duration` (1-2) completed sessions, "
        "then back to the usual level",
        "rupture_unrepaired": "drop of 1.0-1.5 points from `onset` to the end",
        "task_decline": "task falls 0.12-0.18 points per session after `onset` for up to 8 sessions "
        "(goal 40% of that, bond unchanged), then levels off",
        "slow_decline": "every subscale (so task and total) falls 0.05 or 0.10 points per session "
        "after `onset` to the end",
        "sudden_gain": "starts at 2.5-3.95 and steps up 0.8-1.3 points at `onset`, stays up",
        "u_shape": "high (4.0-4.6), a raised-cosine dip of 0.65-0.95 points over 6-10 sessions after "
        "`onset`, then back up",
        "high_falling": "high level (4.3-4.7) falling 0.08-0.12 points per session after `onset`",
        "low_rising": "low level (2.4-3.1) rising 0.06-0.10 points per session throughout",
    }
)

#: Default mix, meant to look like a clinic: mostly stable or growing, about 1 therapy in 2 with
#: a rupture.
DEFAULT_SCENARIOS: Mapping[str, float] = MappingProxyType(
    {
        "stable": 0.24,
        "growth": 0.12,
        "ceiling": 0.08,
        "rupture_repair": 0.33,
        "rupture_unrepaired": 0.10,
        "task_decline": 0.04,
        "slow_decline": 0.03,
        "sudden_gain": 0.02,
        "u_shape": 0.02,
        "high_falling": 0.01,
        "low_rising": 0.01,
    }
)

#: Fewest completed sessions a scenario needs for its event to be observed; shorter episodes are
#: lengthened to this (``u_shape`` also to its dip width + 6).
MIN_SESSIONS: Mapping[str, int] = MappingProxyType(
    {
        "stable": 1,
        "ceiling": 1,
        "growth": 1,
        "rupture_repair": 8,
        "rupture_unrepaired": 7,
        "task_decline": 10,
        "slow_decline": 12,
        "sudden_gain": 6,
        "u_shape": 12,
        "high_falling": 10,
        "low_rising": 6,
    }
)

ITEM_COLUMNS = tuple(f"{ITEM_PREFIX}{i}" for i in range(1, 13))
_SUBSCALES = tuple(WAI_SR_SUBSCALES)
_SUB_OF_ITEM = np.empty(12, dtype=np.int64)
for _s, _name in enumerate(_SUBSCALES):
    for _i in WAI_SR_SUBSCALES[_name]:
        _SUB_OF_ITEM[_i - 1] = _s
_TASK, _GOAL, _BOND = (_SUBSCALES.index(name) for name in (TASK, GOAL, BOND))

# Item bank (WAI-SR item order). Discrimination in logits per latent unit (one answer category);
# thresholds b_j2..b_j5 between answers c-1 and c, near 1.5/2.5/3.5/4.5 shifted by the item's
# difficulty (bond items are endorsed most readily, task items least).
_DISCRIMINATION = np.array([11.0, 12.5, 10.0, 13.0, 11.5, 12.0, 9.5, 12.0, 11.0, 13.5, 12.5, 10.5])
_DIFFICULTY = np.array([0.10, 0.05, -0.15, 0.00, -0.10, 0.05, -0.20, 0.00, -0.05, 0.15, 0.05, 0.10])
_STEP_JITTER = np.array(
    [
        [0.05, -0.05, 0.00, 0.05],
        [-0.05, 0.00, 0.05, 0.00],
        [0.00, 0.05, -0.05, -0.05],
        [0.05, 0.00, 0.00, 0.05],
        [-0.05, 0.05, 0.00, -0.05],
        [0.00, -0.05, 0.05, 0.00],
        [0.05, 0.00, -0.05, 0.05],
        [-0.05, 0.05, 0.05, 0.00],
        [0.00, 0.00, -0.05, -0.05],
        [0.05, -0.05, 0.00, 0.05],
        [0.00, 0.05, 0.00, 0.00],
        [-0.05, 0.00, 0.05, -0.05],
    ]
)
_THRESHOLDS = np.array([1.5, 2.5, 3.5, 4.5])[None, :] + _DIFFICULTY[:, None] + _STEP_JITTER

# Patients.
_LATENT_MEAN = 3.98
_LATENT_SD = 0.50
_SUBSCALE_OFFSET_SD = 0.20
_ITEM_OFFSET_SD = 0.30
_CEILING_STYLE = (1.5, 3.0)
_RHO_MAX = 0.5
_SUBSCALE_NOISE_SHARE = 0.5  # SD of the subscale-specific state relative to the common one
_MAX_LATENT_SD = 1.5
# Therapist form.
_THERAPIST_SHIFT = -0.3
_THERAPIST_MOVEMENT = 0.5
_THERAPIST_ITEM_OFFSET_SD = 0.25
# Planted courses stay within these expected subscale scores.
_TARGET_RANGE = (1.05, 4.95)
_TREND_FLOOR = 1.6

# Latent grid on which the item model is tabulated per patient.
_GRID = np.linspace(-1.5, 9.5, 161)
_GRID_STEP = float(_GRID[1] - _GRID[0])
_QUAD_NODES, _QUAD_WEIGHTS = np.polynomial.hermite_e.hermegauss(20)
_QUAD_WEIGHTS = _QUAD_WEIGHTS / _QUAD_WEIGHTS.sum()


def _logistic(z: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _tables(offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The item model on the latent grid, per patient.

    ``offset`` (patients x 12) is added to the latent score for each item. Returns the expected
    subscale scores (patients x 3 x grid) and the response variance of the total given the
    latent score (patients x grid).
    """
    n = offset.shape[0]
    expected = np.zeros((n, 3, _GRID.size))
    variance = np.zeros((n, _GRID.size))
    for j in range(12):
        z = _GRID[None, :] + offset[:, j, None]
        ey = np.ones_like(z)
        ey2 = np.ones_like(z)
        for k in range(4):
            p = _logistic(_DISCRIMINATION[j] * (z - _THRESHOLDS[j, k]))
            ey += p
            ey2 += (2 * k + 3) * p  # answer c = k + 2 adds c**2 - (c - 1)**2
        expected[:, _SUB_OF_ITEM[j]] += ey / 4.0
        variance += (ey2 - ey * ey) / 144.0
    return expected, variance


def _interp(table: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``table[rows]`` (rows x grid) at latent scores ``x``."""
    idx = np.clip((x - _GRID[0]) / _GRID_STEP, 0.0, _GRID.size - 1.000001)
    i0 = idx.astype(np.int64)
    f = idx - i0
    return table[rows, i0] * (1.0 - f) + table[rows, i0 + 1] * f


def _invert(table: np.ndarray, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Latent scores at which the (non-decreasing) ``table[rows]`` reaches ``y``."""
    first, last = table[rows, 0], table[rows, -1]
    y = np.clip(y, first, np.nextafter(last, -np.inf))
    lo = np.zeros(y.shape, dtype=np.int64)
    hi = np.full(y.shape, _GRID.size - 1, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = (lo + hi) // 2
        below = table[rows, mid] <= y
        lo = np.where(open_ & below, mid, lo)
        hi = np.where(open_ & ~below, mid, hi)
    t0, t1 = table[rows, lo], table[rows, hi]
    f = np.divide(y - t0, t1 - t0, out=np.zeros_like(y), where=t1 > t0)
    return _GRID[0] + _GRID_STEP * (lo + f)


def _uniform_int(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integers uniform on [low, high] elementwise (high >= low)."""
    return low + np.floor(rng.random(low.shape) * (high - low + 1)).astype(np.int64)


def _sample_variance_factor(n: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """E[sample variance] / variance for ``n`` consecutive values of a stationary AR(1)."""
    lag = np.arange(1, max(int(n.max()), 2))
    weight = np.clip(n[:, None] - lag[None, :], 0, None) * rho[:, None] ** lag[None, :]
    pairs = np.maximum(n * (n - 1), 1)
    return np.where(n > 1, 1.0 - 2.0 * weight.sum(axis=1) / pairs, 1.0)


def _calibrate_latent_sd(
    theta: np.ndarray,
    total: np.ndarray,
    variance: np.ndarray,
    target: np.ndarray,
    factor: np.ndarray,
) -> np.ndarray:
    """Per patient, the common latent SD whose observed total has expected sample SD ``target``.

    Observed variance = ``factor`` * Var(E[total | state]) + E[Var(total | state)], both by
    Gauss-Hermite quadrature over the tabulated item model; solved by a damped fixed point.
    """
    rows = np.arange(theta.size)[:, None]
    spread = np.sqrt(1.0 + _SUBSCALE_NOISE_SHARE**2 / 3.0)
    sd = target.copy()
    want = np.zeros_like(sd)
    for _ in range(25):
        sd = np.maximum(sd, 1e-3)
        x = theta[:, None] + (sd * spread)[:, None] * _QUAD_NODES[None, :]
        g = _interp(total, rows, x)
        mean = g @ _QUAD_WEIGHTS
        signal = ((g - mean[:, None]) ** 2) @ _QUAD_WEIGHTS
        noise = _interp(variance, rows, x) @ _QUAD_WEIGHTS
        want = np.maximum(target**2 - noise, 0.0) / factor
        ratio = np.divide(want, signal, out=np.full_like(sd, 4.0), where=signal > 1e-12)
        sd = np.clip(sd * np.minimum(ratio, 4.0) ** 0.35, 0.0, _MAX_LATENT_SD)
    return np.where(want > 0.0, sd, 0.0)


def _ar1(rng: np.random.Generator, rho_step: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-variance stationary AR(1) along axis 1; ``rho_step`` (patients x steps) per step."""
    eps = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = eps[:, 0]
    extra = (1,) * (len(shape) - 2)
    for p in range(1, shape[1]):
        phi = rho_step[:, p - 1].reshape(-1, *extra)
        out[:, p] = phi * out[:, p - 1] + np.sqrt(1.0 - phi * phi) * eps[:, p]
    return out


def _answers(latent: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Graded-response answers 1-5 for latent item scores (rows x 12), inverse CDF on ``u``."""
    answers = np.ones(latent.shape, dtype=np.int8)
    for k in range(4):
        answers += u < _logistic(_DISCRIMINATION * (latent - _THRESHOLDS[:, k]))
    return answers


def _patient_ids(n: int) -> np.ndarray:
    width = max(4, len(str(n)))
    return np.array([f"Q{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def simulate_ordinal_cohort(
    n_patients: int,
    *,
    seed: int,
    sessions: tuple[int, int] = (6, 30),
    session_sd: tuple[float, float] = (0.12, 0.30),
    scenarios: Mapping[str, float] | None = None,
    missing_sessions: float = 0.0,
    missing_items: float = 0.0,
    short_share: float = 0.0,
) -> SimulatedCohort:
    """Simulate ``n_patients`` therapies with an ordinal item model and planted events.

    ``sessions`` is the (min, max) number of completed sessions, drawn uniformly (event scenarios
    are lengthened to :data:`MIN_SESSIONS`); ``session_sd`` the range of the patients'
    within-patient SD of the observed total when stable (see the module docstring);
    ``scenarios`` maps names of :data:`SCENARIOS` to weights (default :data:`DEFAULT_SCENARIOS`);
    ``missing_sessions`` the probability that a scheduled session is missed (gaps in the
    numbering), ``missing_items`` that an answer is missing (at most 2 per session),
    ``short_share`` the share of 4-6 session episodes. Items are int8, or float64 with NaN when
    ``missing_items`` > 0.
    """
    mix = dict(DEFAULT_SCENARIOS if scenarios is None else scenarios)
    unknown = set(mix) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s) {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    weights = np.array(list(mix.values()), dtype=float)
    if weights.size == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("scenario weights must be non-negative with a positive sum")
    lo, hi = sessions
    if not 1 <= lo <= hi:
        raise ValueError("sessions must be (min, max) with 1 <= min <= max")
    sd_lo, sd_hi = session_sd
    if not 0 < sd_lo <= sd_hi:
        raise ValueError("session_sd must be (low, high) with 0 < low <= high")
    if not 0 <= missing_sessions < 0.9:
        raise ValueError("missing_sessions must be in [0, 0.9)")
    if not 0 <= missing_items <= 0.5:
        raise ValueError("missing_items must be in [0, 0.5]")
    if not 0 <= short_share <= 1:
        raise ValueError("short_share must be in [0, 1]")
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")

    # Independent streams, so that e.g. adding missing items leaves the answers unchanged.
    rng, rng_gap, rng_missing, rng_therapist = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    n = n_patients
    names = np.array(list(mix), dtype=object)
    scenario = names[rng.choice(names.size, size=n, p=weights / weights.sum())]

    def is_(name: str) -> np.ndarray:
        return scenario == name

    ceiling = is_("ceiling")

    # Patients: offsets, response style, and the item model tabulated on the latent grid.
    sub_offset = rng.normal(0.0, _SUBSCALE_OFFSET_SD, (n, 3))
    item_offset = rng.normal(0.0, _ITEM_OFFSET_SD, (n, 12))
    style = np.where(ceiling, rng.uniform(*_CEILING_STYLE, n), 0.0)
    offset = sub_offset[:, _SUB_OF_ITEM] + item_offset + style[:, None]
    sub_table, var_table = _tables(offset)
    total_table = sub_table.mean(axis=1)
    flat_sub = sub_table.reshape(n * 3, _GRID.size)
    sub_rows = np.arange(n * 3).reshape(n, 3)
    patient_rows = np.arange(n)

    # Episode length (completed sessions).
    n_sess = rng.integers(lo, hi + 1, n)
    n_sess = np.where(rng.random(n) < short_share, rng.integers(4, 7, n), n_sess)
    width = rng.integers(6, 11, n)  # u_shape dip width
    need = np.array([MIN_SESSIONS[s] for s in scenario], dtype=np.int64)
    need = np.where(is_("u_shape"), np.maximum(need, width + 6), need)
    n_sess = np.maximum(n_sess, need)

    # Event sizes (points, or points per session).
    u = rng.random((n, 3))
    magnitude = np.full(n, np.nan)
    duration = np.zeros(n, dtype=np.int64)
    level = np.full(n, np.nan)  # level fixed by the scenario (NaN: drawn from the trait)
    rupture = is_("rupture_repair") | is_("rupture_unrepaired")
    magnitude[rupture] = 1.0 + 0.5 * u[rupture, 0]
    duration[is_("rupture_repair")] = 1 + (u[is_("rupture_repair"), 1] < 0.5)
    sel = is_("task_decline")
    magnitude[sel] = 0.12 + 0.06 * u[sel, 0]
    sel = is_("slow_decline")
    magnitude[sel] = np.where(u[sel, 0] < 0.5, 0.05, 0.10)
    sel = is_("growth")
    magnitude[sel] = 0.02 + 0.03 * u[sel, 0]
    sel = is_("sudden_gain")
    magnitude[sel] = 0.8 + 0.5 * u[sel, 0]
    level[sel] = 2.5 + (2.25 - magnitude[sel]) * u[sel, 1]
    sel = is_("u_shape")
    magnitude[sel] = 0.65 + 0.3 * u[sel, 0]
    level[sel] = 4.0 + 0.6 * u[sel, 1]
    sel = is_("high_falling")
    magnitude[sel] = 0.08 + 0.04 * u[sel, 0]
    level[sel] = 4.3 + 0.4 * u[sel, 1]
    sel = is_("low_rising")
    magnitude[sel] = 0.06 + 0.04 * u[sel, 0]
    level[sel] = 2.4 + 0.7 * u[sel, 1]

    # Trait: the first of 16 draws whose lowest subscale leaves room for the planted drop.
    room = np.full(n, -np.inf)
    room[rupture] = magnitude[rupture] + 1.4
    sel = is_("task_decline") | is_("slow_decline")
    room[sel] = _TREND_FLOOR + 8 * magnitude[sel]
    room[ceiling] = 4.8  # ceiling raters: every subscale near 5
    candidates = rng.normal(_LATENT_MEAN, _LATENT_SD, (n, 16))
    lowest = np.min(
        [_interp(flat_sub, sub_rows[:, s, None], candidates) for s in range(3)],
        axis=0,
    )
    fits = lowest >= room[:, None]
    pick = np.where(fits.any(axis=1), fits.argmax(axis=1), lowest.argmax(axis=1))
    theta = candidates[patient_rows, pick]
    fixed = ~np.isnan(level)
    theta[fixed] = _invert(total_table, patient_rows[fixed], level[fixed])
    base = np.stack([_interp(flat_sub, sub_rows[:, s], theta) for s in range(3)], axis=1)
    trait = base.mean(axis=1)

    # Session numbers: geometric gaps (missed sessions) before every session after the first.
    m = int(n_sess.max())
    pos = np.arange(m)
    valid = pos[None, :] < n_sess[:, None]
    if missing_sessions > 0:
        gaps = rng_gap.geometric(1.0 - missing_sessions, (n, m)) - 1
        gaps[:, 0] = 0
    else:
        gaps = np.zeros((n, m), dtype=np.int64)
    number = 1 + pos[None, :] + np.cumsum(gaps, axis=1)
    last_number = number[patient_rows, n_sess - 1]

    # Onsets: a completed session (1-based position k) with room before and after.
    k_lo = np.full(n, 4, dtype=np.int64)
    k_hi = np.full(n, -1, dtype=np.int64)
    k_hi = np.where(is_("rupture_repair"), n_sess - duration - 2, k_hi)
    k_hi = np.where(is_("rupture_unrepaired"), n_sess - 3, k_hi)
    k_hi = np.where(is_("task_decline") | is_("high_falling"), n_sess - 6, k_hi)
    k_hi = np.where(is_("slow_decline"), n_sess - 8, k_hi)
    k_hi = np.where(is_("sudden_gain"), n_sess - 2, k_hi)
    k_hi = np.where(is_("u_shape"), n_sess - width - 2, k_hi)
    falling = is_("slow_decline") | is_("high_falling")
    with np.errstate(invalid="ignore", divide="ignore"):
        longest = np.floor((base.min(axis=1) - _TREND_FLOOR) / magnitude)
    k_lo = np.where(falling, np.clip(n_sess - longest, 4, k_hi), k_lo).astype(np.int64)
    has_onset = k_hi >= 1
    onset_pos = np.where(has_onset, _uniform_int(rng, k_lo, np.maximum(k_hi, k_lo)), 0)
    onset = np.where(has_onset, number[patient_rows, np.maximum(onset_pos - 1, 0)], -1)

    # Planted course in observed points per subscale (patients x sessions x subscales).
    t = number.astype(float)
    on = onset[:, None].astype(float)
    mag = magnitude[:, None]
    course = np.zeros((n, m, 3))
    k0 = (onset_pos - 1)[:, None]
    low = (pos[None, :] >= k0) & (pos[None, :] < k0 + duration[:, None])
    course -= np.where(is_("rupture_repair")[:, None] & low, mag, 0.0)[..., None]
    course -= np.where(is_("rupture_unrepaired")[:, None] & (pos[None, :] >= k0), mag, 0.0)[..., None]
    steps = np.clip(t - on, 0.0, 8.0)
    sel = is_("task_decline")[:, None]
    course[..., _TASK] -= np.where(sel, mag * steps, 0.0)
    course[..., _GOAL] -= np.where(sel, 0.4 * mag * steps, 0.0)
    since = np.clip(t - on, 0.0, None)
    course -= np.where(falling[:, None], mag * since, 0.0)[..., None]
    course += np.where(is_("sudden_gain")[:, None] & (t >= on), mag, 0.0)[..., None]
    phase = np.clip((t - on) / width[:, None], 0.0, 1.0)
    dip = mag * 0.5 * (1.0 - np.cos(2.0 * np.pi * phase))
    course -= np.where(is_("u_shape")[:, None], dip, 0.0)[..., None]
    centre = (last_number[:, None] + 1) / 2.0
    course += np.where(is_("growth")[:, None], mag * (t - centre), 0.0)[..., None]
    course += np.where(is_("low_rising")[:, None], mag * (t - 1.0), 0.0)[..., None]

    # Planted course -> latent scores, by inverting each patient's subscale table.
    latent = np.broadcast_to(theta[:, None, None], (n, m, 3)).copy()
    moved = (course != 0.0) & valid[..., None]
    target = np.clip((base[:, None, :] + course)[moved], *_TARGET_RANGE)
    cell_rows = np.broadcast_to(sub_rows[:, None, :], (n, m, 3))[moved]
    latent[moved] = _invert(flat_sub, cell_rows, target)

    # State noise: AR(1), SD calibrated so the observed total has the drawn within-patient SD.
    target_sd = np.exp(rng.uniform(np.log(sd_lo), np.log(sd_hi), n))
    rho = rng.uniform(0.0, _RHO_MAX, n)
    factor = _sample_variance_factor(n_sess, rho)
    latent_sd = _calibrate_latent_sd(theta, total_table, var_table, target_sd, factor)
    latent_sd[ceiling] = target_sd[ceiling]
    rho_step = rho[:, None] ** np.diff(number, axis=1) if m > 1 else np.zeros((n, 0))
    common = latent_sd[:, None] * _ar1(rng, rho_step, (n, m))
    specific = (_SUBSCALE_NOISE_SHARE * latent_sd)[:, None, None] * _ar1(rng, rho_step, (n, m, 3))
    state = common[..., None] + specific

    # One row per completed session: latent item scores -> answers.
    pid = np.repeat(patient_rows, n_sess)
    session = number[valid]
    patient_latent = (latent + state)[valid][:, _SUB_OF_ITEM] + offset[pid]
    answers = _answers(patient_latent, rng.random(patient_latent.shape))

    # Therapist form: same course, half the movement, a bit lower, own item offsets.
    th_offset = 0.5 * sub_offset[:, _SUB_OF_ITEM] + rng_therapist.normal(
        0.0, _THERAPIST_ITEM_OFFSET_SD, (n, 12)
    )
    th_latent = (
        theta[:, None, None]
        + _THERAPIST_SHIFT
        + _THERAPIST_MOVEMENT * (latent - theta[:, None, None] + state)
    )
    th_item_latent = th_latent[valid][:, _SUB_OF_ITEM] + th_offset[pid]
    th_answers = _answers(th_item_latent, rng_therapist.random(th_item_latent.shape))

    if missing_items > 0:
        skip = rng_missing.random(answers.shape) < missing_items
        keys = np.where(skip, rng_missing.random(answers.shape), np.inf)
        third = np.partition(keys, 2, axis=1)[:, 2]
        skip &= keys < third[:, None]
        patient_values: np.ndarray = np.where(skip, np.nan, answers.astype(float))
        therapist_values: np.ndarray = th_answers.astype(float)
    else:
        patient_values, therapist_values = answers, th_answers

    ids = _patient_ids(n)
    base_columns = {PATIENT: ids[pid], SESSION: session.astype(np.int64), SCENARIO: scenario[pid]}
    items = pd.DataFrame({**base_columns, **dict(zip(ITEM_COLUMNS, patient_values.T, strict=True))})
    therapist = pd.DataFrame({**base_columns, **dict(zip(ITEM_COLUMNS, therapist_values.T, strict=True))})
    affected = np.where(is_("task_decline"), "task", np.where(np.isnan(magnitude), "", "all"))
    truth = pd.DataFrame(
        {
            PATIENT: ids,
            SCENARIO: scenario,
            "n_sessions": n_sess.astype(np.int64),
            "trait": trait,
            "ceiling": ceiling,
            "onset": pd.arrays.IntegerArray(np.maximum(onset, 0), onset < 0),
            "duration": pd.arrays.IntegerArray(duration, duration == 0),
            "magnitude": magnitude,
            "affected": affected.astype(object),
            "session_sd": target_sd,
            "rho": rho,
        }
    )
    scores = score_items_wide(items)
    return SimulatedCohort(items=items, therapist_items=therapist, truth=truth, scores=scores)
