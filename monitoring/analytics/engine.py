"""The prospective flag rules of methods.md section 4, one (patient, scale) series at a time.

A *unit* is one (patient, scale) series of completed sessions; ``unit = patient_code *
n_scales + scale_index``. The rules are a sequential state machine per unit (baseline, open
rupture, CUSUM), so they are written the plain way, one unit and one session at a time, and
compiled with numba: a scalar loop over a million sessions runs at the speed of C, reads like
the rules in docs/methods.md, and needs no padding, masks or gathers. The observations are
stored in *output order* (patient, scale, session): unit ``u`` holds positions
``unit_start[u] .. unit_start[u] + n_unit[u] - 1``, and every per-session output is written
there directly, which is the order of ``analysis.sessions``.

Everything computed at session t uses only sessions ``<= t`` of the same unit, so the flags are
prospective by construction (property-tested in tests/analytics/test_properties.py), and
:mod:`monitoring.analytics.reference` (plain Python, per patient) is the oracle the tests
compare this with. Each arithmetic step is the one the earlier vectorised engine made, in the
same order, so the results are the same to the bit (checked against that engine on 154 cohorts
and settings when it was replaced; tests/analytics/test_frozen.py keeps its outputs).

Compilation: numba compiles ``_scatter``, ``_rules`` and ``_grow`` on first use (about 6 s in
all) and caches the machine code: in ``NUMBA_CACHE_DIR`` when set, else next to this file, else
in the user's cache directory (``~/.cache/numba``); later processes load it. With none writable
each process compiles for itself (a warning is logged). numba does no bounds checking, so the
Python functions check the arrays' sizes before calling the kernels. numba's own threading is
not used: web and task workers stay single-threaded per call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numba
import numpy as np

from monitoring.analytics.config import AnalysisConfig

#: Tolerance of threshold comparisons, so that 3.9 - 0.5 and 3.4 compare as equal.
EPS = 1e-9

# Integer codes of the event kinds and rules inside the engine (see columns.KINDS / RULE_*).
KIND_RUPTURE, KIND_REPAIR, KIND_UNREPAIRED, KIND_DECLINE, KIND_GAIN, KIND_LOSS = range(6)
RULE_BASELINE, RULE_PREVIOUS, RULE_BACK, RULE_WINDOW, RULE_CUSUM, RULE_TD = range(6)

#: Event fields, in the rows of the kernel's integer and float event arrays. ``unit`` and ``t``
#: locate the event's session (output position ``unit_start[unit] + t``); ``rupture_t``,
#: ``from_t`` and ``to_t`` are session positions in the unit (-1: not applicable);
#: ``drop_repaired`` (0/1) says of a decline whether the rupture inside its window was repaired
#: before it.
EVENT_INT_FIELDS = ("kind", "rule", "t", "unit", "rupture_t", "from_t", "to_t", "drop_repaired")
EVENT_FLOAT_FIELDS = (
    "magnitude",
    "threshold",
    "baseline",
    "s_used",
    "n_baseline",
    "cusum",
    "mean_before",
    "mean_after",
    "sd_window",
    "t_crit",
)


def _compiler(inline: Literal["never", "always"] = "never") -> Callable[[Callable[..., Any]], Any]:
    """numba's ``njit`` with the machine code cached on disk; without a writable cache directory
    (numba refuses to decorate then) each process compiles for itself, once."""

    def compile_(fn: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, error_model="numpy", nogil=True, inline=inline)(fn)
        except RuntimeError as error:  # "cannot cache function ...: no locator available"
            logging.getLogger(__name__).warning(
                "%s; set NUMBA_CACHE_DIR to a writable directory, or each process compiles the "
                "flag rules again (about 6 s)",
                error,
            )
            return numba.njit(cache=False, error_model="numpy", nogil=True, inline=inline)(fn)

    return compile_


_jit = _compiler()
#: Small helpers are inlined into the kernel (one compilation, no call per session).
_inline = _compiler(inline="always")

# What "decline_during_rupture" means inside the kernel.
_DURING = {"always": 0, "never": 1, "if_drifting": 2}


@dataclass
class Layout:
    """Where each unit's observations are in output order: ``n_unit[u]`` sessions from
    ``unit_start[u]`` (units without a completed session have ``n_unit`` 0)."""

    n_scales: int
    n_unit: np.ndarray
    unit_start: np.ndarray

    @property
    def steps(self) -> int:
        """The most sessions of any unit."""
        return int(self.n_unit.max()) if self.n_unit.size else 0


@_jit
def _scatter(codes, values, session, n_patients, x_out, session_out):
    n_rows, n_scales = values.shape
    n_unit = np.zeros(n_patients * n_scales, dtype=np.int64)
    for i in range(n_rows):
        base = codes[i] * n_scales
        for j in range(n_scales):
            if not math.isnan(values[i, j]):
                n_unit[base + j] += 1
    unit_start = np.empty_like(n_unit)
    total = 0
    for u in range(n_unit.size):
        unit_start[u] = total
        total += n_unit[u]
    fill = unit_start.copy()
    for i in range(n_rows):
        base = codes[i] * n_scales
        for j in range(n_scales):
            v = values[i, j]
            if not math.isnan(v):
                pos = fill[base + j]
                x_out[pos] = v
                session_out[pos] = session[i]
                fill[base + j] = pos + 1
    return n_unit, unit_start


def lay_out(
    codes: np.ndarray,
    values: np.ndarray,
    session: np.ndarray,
    n_patients: int,
    *,
    x_out: np.ndarray | None = None,
    session_out: np.ndarray | None = None,
) -> tuple[Layout, np.ndarray, np.ndarray]:
    """The layout of observations sorted by (patient code, session), and their scores and
    session numbers in output order (written into ``x_out`` and ``session_out`` when given).

    ``codes`` (N,) are sorted patient codes, ``values`` (N, S) the scores (NaN = missing) and
    ``session`` (N,) the session numbers.
    """
    total = int(np.count_nonzero(~np.isnan(values)))
    x_out = np.empty(total) if x_out is None else x_out
    session_out = np.empty(total, dtype=np.int64) if session_out is None else session_out
    _require(
        values.ndim == 2 and codes.shape == session.shape == values.shape[:1], "one code and session per row"
    )
    _require(not codes.size or (codes.min() >= 0 and codes.max() < n_patients), "codes in [0, n_patients)")
    _require(x_out.shape == (total,) and x_out.dtype == np.float64, "x_out: one float64 per score")
    _require(
        session_out.shape == (total,) and session_out.dtype == np.int64, "session_out: one int64 per score"
    )
    n_unit, unit_start = _scatter(
        np.ascontiguousarray(codes, dtype=np.int64),
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(session, dtype=np.int64),
        n_patients,
        x_out,
        session_out,
    )
    return Layout(n_scales=values.shape[1], n_unit=n_unit, unit_start=unit_start), x_out, session_out


def _require(condition: bool, what: str) -> None:
    """The kernels trust their arrays' sizes (numba does no bounds checking): check them first."""
    if not condition:
        raise ValueError(f"engine input: {what}")


@dataclass
class RuleOutputs:
    """Per-observation outputs of :func:`run_rules`, in output order. The caller may pass its own
    arrays (e.g. rows of the frame they end up in), so that no fresh memory is taken for them."""

    baseline: np.ndarray
    n_baseline: np.ndarray
    s_used: np.ndarray
    cusum: np.ndarray
    in_rupture: np.ndarray

    @classmethod
    def empty(cls, total: int) -> RuleOutputs:
        return cls(
            baseline=np.empty(total),
            n_baseline=np.empty(total, dtype=np.int32),
            s_used=np.empty(total),
            cusum=np.empty(total),
            in_rupture=np.empty(total, dtype=bool),
        )


@dataclass
class EngineResult:
    """The per-observation outputs (output order), whether each unit's latest rupture is still
    open after its last session, and the events (one array per field of
    ``EVENT_INT_FIELDS`` / ``EVENT_FLOAT_FIELDS``, in the order found)."""

    out: RuleOutputs
    open_rupture: np.ndarray
    events: dict[str, np.ndarray]


class _Params(NamedTuple):
    """The scalar settings the kernel reads (from :class:`AnalysisConfig`)."""

    min_baseline: int
    repair_window: int
    repair_tolerance: float
    cusum_min_baseline: int
    cusum_prediction_sd: bool
    cusum_cap: float
    cusum_reference: float
    decision: float
    during: int
    decline_restart: bool
    predictive: bool
    sudden_window: int
    sudden_min_before: int
    stricter: bool
    relative: float  # NaN: criterion 2 not used
    scale_min: float
    scale_max: float


@_inline
def _maximum(a, b):
    """``np.maximum``: NaN if either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a >= b else b


@_inline
def _minimum(a, b):
    """``np.minimum``: NaN if either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a <= b else b


@_inline
def _fmax(a, b):
    """``np.fmax``: the other value if one is NaN."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return a if a >= b else b


@_jit
def _grow(a, used):
    bigger = np.empty((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
    bigger[:, :used] = a[:, :used]
    return bigger


@_jit
def _rules(
    x,
    n_unit,
    unit_start,
    n_scales,
    pooled,
    sem,
    rc,
    prior_df,
    prior_weight,
    previous_threshold,
    rupture_factor,
    prediction_factor,
    t_crit_by_before,
    p,
    baseline_out,
    n_baseline_out,
    s_used_out,
    cusum_out,
    in_rupture_out,
):
    """The rules of docs/methods.md section 4 for every unit; see :func:`run_rules`.

    ``x`` and the ``*_out`` arrays are in output order; ``pooled`` .. ``previous_threshold`` are
    by scale; ``rupture_factor[scale, n]`` and ``prediction_factor[n]`` are looked up by the
    baseline's size n, ``t_crit_by_before`` by the sessions before a jump; ``p`` holds the
    settings. Returns whether each unit's latest rupture is still open, and the events as an
    (8, E) int array and a (10, E) float array (rows: ``EVENT_INT_FIELDS``, ``EVENT_FLOAT_FIELDS``).
    """
    n_units = n_unit.size
    open_rupture = np.zeros(n_units, dtype=np.bool_)
    # Untouched memory costs nothing: _event writes every field of the events it records.
    capacity = max(64, x.size // 8)
    ints = np.empty((8, capacity), dtype=np.int64)
    floats = np.empty((10, capacity))
    n_ev = 0
    window = p.sudden_window
    tol = p.repair_tolerance
    for u in range(n_units):
        n_u = n_unit[u]
        if n_u == 0:
            continue
        s0 = unit_start[u]
        sc = u % n_scales
        pooled_u, sem_u, rc_u = pooled[sc], sem[sc], rc[sc]
        df_u, weight_u, prev_u = prior_df[sc], prior_weight[sc], previous_threshold[sc]
        # The state after the previous session.
        # Baseline (4.1): sum, sum of squares and count of the sessions so far that were not
        # inside a rupture (a repair session counts again); after an unrepaired rupture they
        # restart from the episode sums, after a decline from its session.
        base_sum = 0.0
        base_sq = 0.0
        base_n = 0
        cus = 0.0  # lower CUSUM (4.4): 0 until it starts, and again after a decline
        # Open rupture (4.2, 4.3): its session, the sessions since, the baseline and spread it
        # was judged against (the repair target), its score (a repair is measured from it), the
        # CUSUM just before it; the episode sums from it on become the level if unrepaired.
        in_r = False
        r_step = -1
        r_age = 0
        r_base = math.nan
        r_spread = math.nan
        r_score = math.nan
        cus_before_r = 0.0
        ep_sum = 0.0
        ep_sq = 0.0
        ep_n = 0
        run_from = 0  # where the CUSUM run that a decline at this session would end began
        last_rupture = -1
        repaired_at = -1  # session of the latest rupture's repair, -1 if none
        for t in range(n_u):
            was_open = in_r  # a rupture opened at an earlier session is still open
            if n_ev + 4 > ints.shape[1]:
                ints = _grow(ints, n_ev)
                floats = _grow(floats, n_ev)
            xt = x[s0 + t]
            # 4.1 Baseline: the mean of the earlier sessions not inside a rupture; its spread
            # s_used, "predictive" (own SD shrunk towards the clinic's prior, Smyth 2004) or
            # "floor" (max of own SD and pooled SD, Gumz et al. 2012), floored at the SEM.
            n = base_n
            mean = base_sum / n  # NaN without a baseline session; own SD NaN below two
            sd = base_sum * mean
            sd = base_sq - sd
            sd /= n - 1
            sd = math.sqrt(_maximum(sd, 0.0))
            if p.predictive:
                nm1 = max(n - 1, 0)
                own = sd * sd
                own *= nm1
                if math.isnan(own):  # as np.nan_to_num: no own SD, the prior alone
                    own = 0.0
                elif math.isinf(own):
                    own = 1.7976931348623157e308 if own > 0 else -1.7976931348623157e308
                own += weight_u
                own /= df_u + nm1
                spread = math.sqrt(own)
            else:
                spread = _fmax(sd, pooled_u)
            spread = _fmax(spread, sem_u)
            baseline_out[s0 + t] = mean
            s_used_out[s0 + t] = spread
            n_baseline_out[s0 + t] = n
            below = mean - xt

            # 4.2 Rupture: clearly below the unit's own level (baseline_k_sd), or with 1-2
            # baseline sessions a drop from the previous session (previous_session). None opens
            # while one is open.
            factor = rupture_factor[sc, n]
            main = (not was_open) and n >= p.min_baseline and below >= factor * spread - EPS
            early = False
            drop = math.nan
            if t >= 1 and n >= 1 and n < p.min_baseline and not was_open and not main:
                drop = x[s0 + t - 1] - xt
                early = drop >= prev_u - EPS
            new = main or early
            if main:
                _event(
                    ints,
                    floats,
                    n_ev,
                    KIND_RUPTURE,
                    RULE_BASELINE,
                    t,
                    u,
                    below,
                    factor * spread,
                    mean,
                    spread,
                    n,
                )
                n_ev += 1
            elif early:
                _event(ints, floats, n_ev, KIND_RUPTURE, RULE_PREVIOUS, t, u, drop, prev_u, mean, spread, n)
                n_ev += 1

            # 4.3 Repair: within repair_window sessions, back to within tolerance spreads of the
            # level the rupture was judged against (back_within_s); else unrepaired (window_ended).
            repaired = False
            unrepaired = False
            age = r_age + 1
            if was_open:
                target = r_base - tol * r_spread
                repaired = xt >= target - EPS
                unrepaired = (not repaired) and age >= p.repair_window
                if repaired:
                    _event(
                        ints,
                        floats,
                        n_ev,
                        KIND_REPAIR,
                        RULE_BACK,
                        t,
                        u,
                        xt - r_score,
                        target - r_score,
                        r_base,
                        r_spread,
                        math.nan,
                    )
                    ints[4, n_ev] = r_step
                    n_ev += 1
                    repaired_at = t
                elif unrepaired:
                    _event(
                        ints,
                        floats,
                        n_ev,
                        KIND_UNREPAIRED,
                        RULE_WINDOW,
                        t,
                        u,
                        r_base - xt,
                        r_spread,
                        r_base,
                        r_spread,
                        math.nan,
                    )
                    ints[4, n_ev] = r_step
                    n_ev += 1
            if new:
                last_rupture = t
                repaired_at = -1

            # 4.4 Lower CUSUM on standardised deviations (Page 1954), from cusum_min_baseline
            # baseline sessions on; above the decision value a decline (lower_cusum).
            c = below / spread
            if p.cusum_prediction_sd:
                c /= prediction_factor[n]
            c = _minimum(c, p.cusum_cap)
            c += cus
            c -= p.cusum_reference
            c = _maximum(c, 0.0)
            if n < p.cusum_min_baseline:
                c = 0.0
                cusum_out[s0 + t] = math.nan
            else:
                cusum_out[s0 + t] = c
            declined = c > p.decision
            if declined and p.during != 0 and (was_open or new):
                if p.during == 1:
                    declined = False
                else:  # "if_drifting": a decline inside a rupture needs a drift from before it
                    before = cus_before_r if was_open else cus
                    declined = before > 0
            if declined:
                # Its window: the CUSUM run it ends, summed back from this session (in this order).
                total = xt
                for q in range(t - 1, run_from - 1, -1):
                    total += x[s0 + q]
                _event(ints, floats, n_ev, KIND_DECLINE, RULE_CUSUM, t, u, c, p.decision, mean, spread, n)
                floats[5, n_ev] = c
                floats[7, n_ev] = total / (t - run_from + 1)
                ints[5, n_ev] = run_from
                ints[6, n_ev] = t
                if last_rupture >= run_from:
                    ints[4, n_ev] = last_rupture
                    ints[7, n_ev] = 1 if 0 <= repaired_at < t else 0
                else:
                    ints[7, n_ev] = 0
                n_ev += 1

            # Carry the state on to the next session.
            episode = was_open and not repaired
            if new:
                cus_before_r = cus
            cus = 0.0 if (declined or unrepaired) else c
            if new:
                ep_sum = xt
                ep_sq = xt * xt
                ep_n = 1
            elif episode:
                ep_sum += xt
                ep_sq += xt * xt
                ep_n += 1
            if was_open:
                r_age = age
            if repaired or unrepaired:
                in_r = False
            if new:
                in_r = True
                r_age = 0
                r_step = t
                r_base = mean
                r_spread = spread
                r_score = xt
            in_rupture_out[s0 + t] = new or episode
            joins = repaired if was_open else not new  # a repair session counts again
            if joins:
                base_sum += xt
                base_sq += xt * xt
                base_n += 1
            if unrepaired:  # the rupture's sessions are the unit's new level
                base_sum = ep_sum
                base_sq = ep_sq
                base_n = ep_n
            if declined and p.decline_restart:  # the level is where the alliance is now
                base_sum = xt
                base_sq = xt * xt
                base_n = 1
            # A decline at the next session would begin its window here unless the run goes on.
            chain = cusum_out[s0 + t] > 0 and not (declined or unrepaired)
            if not chain:
                run_from = t + 1

            # 4.5 Sudden gains and losses (Tang & DeRubeis 1999): the jump between positions
            # q = t - window and q + 1, decided once the window after it is in.
            q = t - window
            n_before = min(window, q + 1)
            if q >= 0 and n_before >= p.sudden_min_before:
                x_q = x[s0 + q]
                jump = x[s0 + q + 1] - x_q
                if abs(jump) >= rc_u - EPS:
                    sum_a = 0.0
                    for i in range(q + 1, q + 1 + window):
                        sum_a += x[s0 + i]
                    sum_b = 0.0
                    for i in range(q - n_before + 1, q + 1):
                        sum_b += x[s0 + i]
                    mean_a = sum_a / window
                    mean_b = sum_b / n_before
                    ss_a = 0.0
                    for i in range(q + 1, q + 1 + window):
                        d = x[s0 + i] - mean_a
                        ss_a += d * d
                    ss_b = 0.0
                    for i in range(q - n_before + 1, q + 1):
                        d = x[s0 + i] - mean_b
                        ss_b += d * d
                    sd_window = math.sqrt((ss_a + ss_b) / (window + n_before - 2))
                    s_td = _fmax(_fmax(sd_window, pooled_u), sem_u) if p.stricter else sd_window
                    t_crit = t_crit_by_before[n_before]
                    gain = jump > 0 and mean_a - mean_b > t_crit * s_td
                    loss = jump < 0 and mean_b - mean_a > t_crit * s_td
                    if not math.isnan(p.relative):
                        gain = gain and jump >= p.relative * (p.scale_max - x_q) - EPS
                        loss = loss and -jump >= p.relative * (x_q - p.scale_min) - EPS
                    if gain or loss:
                        kind = KIND_GAIN if gain else KIND_LOSS
                        _event(
                            ints,
                            floats,
                            n_ev,
                            kind,
                            RULE_TD,
                            t,
                            u,
                            abs(jump),
                            rc_u,
                            math.nan,
                            math.nan,
                            math.nan,
                        )
                        ints[5, n_ev] = q
                        ints[6, n_ev] = q + 1
                        floats[6, n_ev] = mean_b
                        floats[7, n_ev] = mean_a
                        floats[8, n_ev] = s_td
                        floats[9, n_ev] = t_crit
                        n_ev += 1
        open_rupture[u] = in_r
    return open_rupture, ints[:, :n_ev], floats[:, :n_ev]


@_inline
def _event(ints, floats, i, kind, rule, t, unit, magnitude, threshold, baseline, s_used, n_baseline):
    """Record an event in column ``i``: the fields every kind has; the others start as not
    applicable (-1, NaN) and the caller sets those its kind has."""
    ints[0, i] = kind
    ints[1, i] = rule
    ints[2, i] = t
    ints[3, i] = unit
    ints[4:, i] = -1
    floats[0, i] = magnitude
    floats[1, i] = threshold
    floats[2, i] = baseline
    floats[3, i] = s_used
    floats[4, i] = n_baseline
    floats[5:, i] = math.nan


def run_rules(
    x: np.ndarray,
    layout: Layout,
    *,
    pooled: np.ndarray,
    sem: np.ndarray,
    rc: np.ndarray,
    config: AnalysisConfig,
    prior_df: np.ndarray | None = None,
    prior_var: np.ndarray | None = None,
    out: RuleOutputs | None = None,
) -> EngineResult:
    """Run baseline, rupture/repair, CUSUM decline and sudden-change rules over all units.

    ``x`` holds the scores in output order (:func:`lay_out`); ``pooled``, ``sem`` and ``rc`` are
    the clinic's values by scale index (``pooled`` is the prior's typical SD under the
    "predictive" spread rule), ``prior_df`` and ``prior_var`` its within-patient variance prior
    by scale. Definitions are those of methods.md section 4 and docs/methods.md. The
    per-observation outputs are written into ``out`` when given.
    """
    n_scales = layout.n_scales
    if prior_df is None or prior_var is None:
        prior_df = np.full(n_scales, config.prior_df_default)
        prior_var = np.full(n_scales, np.nan)
    steps = layout.steps
    with np.errstate(divide="ignore"):
        prediction_factor = np.sqrt(1.0 + 1.0 / np.arange(steps + 2, dtype=float))
    window = config.sudden_window
    t_crit = np.full(window + 1, np.nan)
    for n_before in range(max(config.sudden_min_before, 1), window + 1):
        t_crit[n_before] = config.t_critical(n_before, window)
    out = RuleOutputs.empty(x.size) if out is None else out
    _require(x.ndim == 1 and int(layout.n_unit.sum()) == x.size, "x: one score per session of the layout")
    _require(layout.n_unit.shape == layout.unit_start.shape, "layout: a start per unit")
    for values in (pooled, sem, rc, prior_df, prior_var):
        _require(np.shape(values) == (n_scales,), "one clinic value per scale")
    for name in ("baseline", "n_baseline", "s_used", "cusum", "in_rupture"):
        _require(getattr(out, name).shape == x.shape, f"out.{name}: one value per session")
    params = _Params(
        min_baseline=int(config.min_baseline),
        repair_window=int(config.repair_window),
        repair_tolerance=float(config.repair_tolerance),
        cusum_min_baseline=int(config.cusum_min_baseline),
        cusum_prediction_sd=bool(config.cusum_prediction_sd),
        cusum_cap=float(config.cusum_cap),
        cusum_reference=float(config.cusum_reference),
        decision=float(config.decision_eff),
        during=_DURING[config.decline_during_rupture],
        decline_restart=bool(config.decline_restart),
        predictive=config.spread_rule == "predictive",
        sudden_window=int(window),
        sudden_min_before=int(config.sudden_min_before),
        stricter=config.sudden_spread == "stricter",
        relative=math.nan if config.sudden_relative is None else float(config.sudden_relative),
        scale_min=float(config.scale_min),
        scale_max=float(config.scale_max),
    )

    def by_scale(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.float64)

    open_rupture, ints, floats = _rules(
        np.ascontiguousarray(x, dtype=np.float64),
        layout.n_unit,
        layout.unit_start,
        n_scales,
        by_scale(pooled),
        by_scale(sem),
        by_scale(rc),
        by_scale(prior_df),
        by_scale(prior_df * np.where(np.isnan(prior_var), 0.0, prior_var)),
        by_scale(np.maximum(rc, config.k_eff * config.previous_sd_factor * pooled)),
        rupture_factors(config, by_scale(prior_df), steps + 2),
        prediction_factor,
        t_crit,
        params,
        out.baseline,
        out.n_baseline,
        out.s_used,
        out.cusum,
        out.in_rupture,
    )
    events = {name: ints[i] for i, name in enumerate(EVENT_INT_FIELDS)}
    events.update({name: floats[i] for i, name in enumerate(EVENT_FLOAT_FIELDS)})
    return EngineResult(out=out, open_rupture=open_rupture, events=events)


def rupture_factors(config: AnalysisConfig, prior_df: np.ndarray, size: int) -> np.ndarray:
    """``factor[scale, n]``: the multiple of ``s_used`` a drop below a baseline of n sessions must
    reach to be a rupture.

    "predictive": the one-sided ``Phi(k_eff)`` quantile of Student's t with
    ``prior_df + n - 1`` degrees of freedom, times ``sqrt(1 + 1/n)``: the bound of a prediction
    interval for the next session, with a spread estimated from the baseline and the prior (a
    short baseline gives a wider bound). "floor": ``k_eff`` (methods.md section 4).
    """
    from scipy.stats import norm
    from scipy.stats import t as student_t

    n = np.arange(size, dtype=float)
    if config.spread_rule == "floor":
        return np.full((prior_df.size, size), float(config.k_eff))
    tail = float(norm.sf(config.k_eff))
    df = prior_df[:, None] + np.maximum(n[None, :] - 1.0, 0.0)
    with np.errstate(divide="ignore"):
        factor = student_t.isf(tail, df) * np.sqrt(1.0 + 1.0 / n[None, :])
    factor[:, 0] = np.inf
    return np.asarray(factor)
