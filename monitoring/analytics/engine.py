"""The prospective flag rules of methods.md section 4, vectorised over all patients at once.

A *unit* is one (patient, scale) series of completed sessions. The rules are a sequential state
machine per unit (baseline, open rupture, CUSUM), so the loop runs over the session axis only:
at step t every unit that has a t-th completed session advances together, with numpy operations
on whole arrays.

Layout (why it is fast and never pads): units are ranked by their number of sessions, longest
first, so the units still active at step t are always a prefix ``[0, m_t)`` of the rank order.
Observations are stored position-major in one flat array: the block of step t holds the t-th
score of ranks ``0 .. m_t - 1``, contiguously. Every per-step operation is then a slice (a view,
no copy, no gather), the total work is proportional to the number of observations however
ragged the series are, and state arrays are sliced ``[:m_t]``.

Everything computed at step t uses only positions ``<= t`` of the same unit, so the flags are
prospective by construction (property-tested in tests/analytics/test_properties.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from monitoring.analytics.config import AnalysisConfig

#: Tolerance of threshold comparisons, so that 3.9 - 0.5 and 3.4 compare as equal.
EPS = 1e-9

# Integer codes of the event kinds and rules inside the engine (see columns.KINDS / RULE_*).
KIND_RUPTURE, KIND_REPAIR, KIND_UNREPAIRED, KIND_DECLINE, KIND_GAIN, KIND_LOSS = range(6)
RULE_BASELINE, RULE_PREVIOUS, RULE_BACK, RULE_WINDOW, RULE_CUSUM, RULE_TD = range(6)

_EVENT_FIELDS = (
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
_EVENT_INT_FIELDS = ("kind", "rule", "t", "rank", "rupture_t", "from_t", "to_t")


@dataclass
class Layout:
    """Where every observation lives in the flat step-major arrays.

    ``n_unit[u]`` sessions of unit ``u = patient_code * n_scales + scale_index``; ``rank_of_unit``
    and ``unit_of_rank`` map between unit ids and ranks; ``offset[t]`` / ``active[t]`` locate the
    block of step t; ``gather[i]`` is the flat index of the i-th observation in output order
    (patient, scale, session), ``unit_start[u]`` where unit u's observations begin in output order
    and ``start_of_rank`` the same by rank: the observation of step t and rank r is at
    ``offset[t] + r`` in the flat arrays and at ``start_of_rank[r] + t`` in output order.
    """

    n_scales: int
    n_unit: np.ndarray
    unit_of_rank: np.ndarray
    rank_of_unit: np.ndarray
    offset: np.ndarray
    active: np.ndarray
    gather: np.ndarray
    unit_start: np.ndarray
    start_of_rank: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.active.size)


def build_layout(
    codes: np.ndarray,
    values: np.ndarray,
    session: np.ndarray,
    n_patients: int,
    *,
    x_out: np.ndarray | None = None,
    session_out: np.ndarray | None = None,
) -> tuple[Layout, np.ndarray, np.ndarray, np.ndarray]:
    """Layout for observations sorted by (patient code, session), and the flat arrays.

    ``codes`` (N,) are sorted patient codes, ``values`` (N, S) the scores (NaN = missing) and
    ``session`` (N,) the session numbers. Returns the layout, the scores in the layout's flat
    step-major order, and the scores and session numbers in output order (written into
    ``x_out`` and ``session_out`` when given, so that the caller's buffers hold them).
    """
    valid = ~np.isnan(values)
    n_rows, n_scales = valid.shape
    starts = np.searchsorted(codes, np.arange(n_patients), side="left")
    cum = np.cumsum(valid, axis=0, dtype=np.int32)
    before = np.zeros((n_patients, n_scales), dtype=np.int32)
    nonzero = starts > 0
    before[nonzero] = cum[starts[nonzero] - 1]
    ends = np.append(starts[1:], n_rows)
    at_end = cum[ends - 1] if n_rows else np.zeros((0, n_scales), dtype=np.int32)
    n_unit = (at_end - before).reshape(-1).astype(np.int64)
    cum -= before[codes]
    cum -= 1
    rank_in_unit = cum  # position of each cell within its unit
    unit_of_rank = np.argsort(-n_unit, kind="stable")
    rank_of_unit = np.empty_like(unit_of_rank)
    rank_of_unit[unit_of_rank] = np.arange(unit_of_rank.size)
    steps = int(n_unit.max()) if n_unit.size else 0
    counts = np.bincount(n_unit, minlength=steps + 1)
    active = (n_unit.size - np.cumsum(counts))[:steps]  # units with more than t sessions
    offset = np.concatenate(([0], np.cumsum(active)[:-1])).astype(np.int64)
    unit_start = np.concatenate(([0], np.cumsum(n_unit)[:-1])).astype(np.int64)
    total = int(n_unit.sum())
    x_flat = np.empty(total)
    x_out = np.empty(total) if x_out is None else x_out
    session_out = np.empty(total, dtype=np.int64) if session_out is None else session_out
    gather = np.empty(total, dtype=np.int64)
    # One scale at a time: arrays of one row per response rather than one per cell, which the
    # allocator can recycle between scales (full-length temporaries are fresh pages each time).
    # Within a scale the rows are in patient order, so the writes in output order are sequential.
    unit_base = codes * n_scales
    for col in range(n_scales):
        rows = np.flatnonzero(valid[:, col])
        pos = rank_in_unit[rows, col].astype(np.int64)
        unit = unit_base[rows]
        unit += col
        x = values[rows, col]
        flat = offset[pos]
        flat += rank_of_unit[unit]
        x_flat[flat] = x
        pos += unit_start[unit]
        gather[pos] = flat
        x_out[pos] = x
        session_out[pos] = session[rows]
    del valid
    layout = Layout(
        n_scales=n_scales,
        n_unit=n_unit,
        unit_of_rank=unit_of_rank,
        rank_of_unit=rank_of_unit,
        offset=offset,
        active=active,
        gather=gather,
        unit_start=unit_start,
        start_of_rank=unit_start[unit_of_rank],
    )
    return layout, x_flat, x_out, session_out


@dataclass
class _EventBuffer:
    """Collects the few event cells found at each step; concatenated once at the end."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(
        self,
        *,
        kind: int,
        rule: int | np.ndarray,
        t: int,
        ranks: np.ndarray,
        **values: np.ndarray | float | int,
    ) -> None:
        n = ranks.size
        if n == 0:
            return
        row: dict[str, np.ndarray] = {
            "kind": np.full(n, kind, dtype=np.int64),
            "rule": np.broadcast_to(np.asarray(rule, dtype=np.int64), (n,)).copy(),
            "t": np.full(n, t, dtype=np.int64),
            "rank": ranks.astype(np.int64),
        }
        for name in _EVENT_INT_FIELDS[4:]:
            row[name] = np.broadcast_to(np.asarray(values.pop(name, -1), dtype=np.int64), (n,))
        for name in _EVENT_FIELDS:
            row[name] = np.broadcast_to(np.asarray(values.pop(name, np.nan), dtype=float), (n,))
        if values:
            raise TypeError(f"unknown event fields {sorted(values)}")
        for name, array in row.items():
            self.parts.setdefault(name, []).append(array)

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in (*_EVENT_INT_FIELDS, *_EVENT_FIELDS):
            chunks = self.parts.get(name)
            dtype = np.int64 if name in _EVENT_INT_FIELDS else float
            out[name] = np.concatenate(chunks).astype(dtype, copy=False) if chunks else np.empty(0, dtype)
        return out


@dataclass
class EngineResult:
    """Per-observation outputs in the flat step-major order, the state of each rank after its
    last session, and the raw event cells (located by step and rank)."""

    baseline: np.ndarray
    n_baseline: np.ndarray
    s_used: np.ndarray
    cusum: np.ndarray
    in_rupture: np.ndarray
    open_rupture_by_rank: np.ndarray
    events: dict[str, np.ndarray]


@dataclass
class RuleState:
    """What the rules carry from one step to the next: one entry per rank (unit), for all ranks.

    Baseline (4.1): ``baseline_sum``, ``baseline_sumsq`` and ``baseline_n`` are the running sum,
    sum of squares and count of the unit's baseline sessions, its sessions so far that were not
    inside a rupture (a repair session counts again). After an unrepaired rupture they restart
    from the episode sums below.

    Lower CUSUM (4.4): ``cusum`` is S after the unit's latest session; 0 until the CUSUM starts,
    and again after a decline or an unrepaired rupture.

    Open rupture (4.2, 4.3): ``in_rupture`` is True from a rupture's session until its repair or
    unrepaired session. Of the latest rupture, ``rupture_step`` is its step (session position),
    ``rupture_age`` the sessions since then, ``rupture_baseline`` and ``rupture_spread`` the
    baseline and s_used it was judged against (the repair target), ``rupture_score`` its score
    (a repair's magnitude is measured from it) and ``cusum_before_rupture`` the CUSUM just before
    it (for ``decline_during_rupture="if_drifting"``).

    Rupture episode (4.3): ``episode_sum``, ``episode_sumsq`` and ``episode_n`` sum the sessions
    from the rupture on while it is open; if it ends unrepaired they become the new baseline.
    """

    baseline_sum: np.ndarray
    baseline_sumsq: np.ndarray
    baseline_n: np.ndarray
    cusum: np.ndarray
    in_rupture: np.ndarray
    rupture_step: np.ndarray
    rupture_age: np.ndarray
    rupture_baseline: np.ndarray
    rupture_spread: np.ndarray
    rupture_score: np.ndarray
    cusum_before_rupture: np.ndarray
    episode_sum: np.ndarray
    episode_sumsq: np.ndarray
    episode_n: np.ndarray

    @classmethod
    def start(cls, n_ranks: int) -> RuleState:
        """The state before any session: empty baselines, CUSUM at 0, no rupture."""
        return cls(
            baseline_sum=np.zeros(n_ranks),
            baseline_sumsq=np.zeros(n_ranks),
            baseline_n=np.zeros(n_ranks, dtype=np.int64),
            cusum=np.zeros(n_ranks),
            in_rupture=np.zeros(n_ranks, dtype=bool),
            rupture_step=np.full(n_ranks, -1, dtype=np.int64),
            rupture_age=np.zeros(n_ranks, dtype=np.int64),
            rupture_baseline=np.full(n_ranks, np.nan),
            rupture_spread=np.full(n_ranks, np.nan),
            rupture_score=np.full(n_ranks, np.nan),
            cusum_before_rupture=np.zeros(n_ranks),
            episode_sum=np.zeros(n_ranks),
            episode_sumsq=np.zeros(n_ranks),
            episode_n=np.zeros(n_ranks, dtype=np.int64),
        )


@dataclass
class RuleOutputs:
    """Per-observation outputs of :func:`run_rules`, step-major like ``x_flat``. Each step writes
    its own contiguous block in place (no per-step allocation); the caller gathers them into
    output order (``layout.gather``). The caller may pass its own arrays, e.g. scratch space it
    holds anyway, so that no fresh memory is taken for them."""

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


@dataclass(frozen=True)
class _Run:
    """What stays fixed during one :func:`run_rules` call, and where its results go.

    ``pooled``, ``sem`` and ``rc`` are the clinic values of each rank's scale (``pooled`` is the
    prior's typical SD under the "predictive" spread rule); ``prior_df`` and ``prior_weight``
    (= prior_df * prior variance) the within-patient variance prior of each rank's scale;
    ``previous_threshold`` is the bound of the 1-2 session rupture rule by rank;
    ``prediction_factor[n]`` is sqrt(1 + 1/n), and ``rupture_factor[scale, n]`` the multiple of
    the spread that a drop must reach with a baseline of n sessions, looked up rather than
    computed every step.
    """

    x_flat: np.ndarray
    layout: Layout
    config: AnalysisConfig
    pooled: np.ndarray
    sem: np.ndarray
    rc: np.ndarray
    scale: np.ndarray
    prior_df: np.ndarray
    prior_weight: np.ndarray
    previous_threshold: np.ndarray
    prediction_factor: np.ndarray
    rupture_factor: np.ndarray
    out: RuleOutputs
    events: _EventBuffer


class _Step(NamedTuple):
    """Step t: ranks ``[0, m)`` have a t-th session, whose scores ``x`` are the view
    ``x_flat[block]`` (``block`` starts at ``start``); ``open_ranks`` are the ranks among them
    inside a rupture opened at an earlier step (few, so handled by index)."""

    t: int
    m: int
    start: int
    block: slice
    x: np.ndarray
    open_ranks: np.ndarray

    @classmethod
    def at(cls, t: int, run: _Run, state: RuleState) -> _Step:
        m = int(run.layout.active[t])
        start = int(run.layout.offset[t])
        block = slice(start, start + m)
        return cls(t, m, start, block, run.x_flat[block], np.flatnonzero(state.in_rupture[:m]))


class _Baseline(NamedTuple):
    """Baseline at t: ``n`` sessions (a view of the state), ``mean`` and ``spread`` (s_used;
    views of their output blocks) and ``below`` = mean - x_t, the points below it."""

    n: np.ndarray
    mean: np.ndarray
    spread: np.ndarray
    below: np.ndarray


class _Ruptures(NamedTuple):
    """Ruptures opening at t: mask over ``[0, m)`` and its ranks."""

    new: np.ndarray
    new_ranks: np.ndarray


class _Repairs(NamedTuple):
    """Outcome at t of the ruptures opened earlier, aligned with ``step.open_ranks``: ``age`` is
    the sessions since the rupture and ``repaired`` a mask; ``closed_ranks`` were repaired or
    became unrepaired, ``episode_ranks`` (not repaired) have a session inside the rupture."""

    age: np.ndarray
    repaired: np.ndarray
    repaired_ranks: np.ndarray
    unrepaired_ranks: np.ndarray
    closed_ranks: np.ndarray
    episode_ranks: np.ndarray


class _Declines(NamedTuple):
    """``cusum`` is S_t over ``[0, m)`` (0 where the CUSUM has not started); ``ranks`` raise a
    decline at t."""

    cusum: np.ndarray
    ranks: np.ndarray


def run_rules(
    x_flat: np.ndarray,
    layout: Layout,
    *,
    pooled_by_rank: np.ndarray,
    sem_by_rank: np.ndarray,
    rc_by_rank: np.ndarray,
    config: AnalysisConfig,
    scale_by_rank: np.ndarray | None = None,
    prior_df_by_scale: np.ndarray | None = None,
    prior_var_by_scale: np.ndarray | None = None,
    out: RuleOutputs | None = None,
) -> EngineResult:
    """Run baseline, rupture/repair, CUSUM decline and sudden-change rules over all units.

    ``x_flat`` holds the scores in the layout's step-major order; the ``*_by_rank`` arrays give
    each unit's clinic pooled within-patient SD, SEM and RC (scale-specific). Definitions are
    those of methods.md section 4 and docs/methods.md; :mod:`monitoring.analytics.reference` is
    a line-by-line per-patient transcription used to test this function.

    Each step calls one function per rule, in order. The rules read the state as it was after
    step t - 1 and record their events; only :func:`_state_update` changes the state. The
    per-observation outputs are written into ``out`` when given.
    """
    with np.errstate(divide="ignore"):
        prediction_factor = np.sqrt(1.0 + 1.0 / np.arange(layout.steps + 2, dtype=float))
    n_ranks = layout.unit_of_rank.size
    if scale_by_rank is None:
        scale_by_rank = np.zeros(n_ranks, dtype=np.int64)
    if prior_df_by_scale is None or prior_var_by_scale is None:
        n_scales = int(scale_by_rank.max()) + 1 if n_ranks else 1
        prior_df_by_scale = np.full(n_scales, config.prior_df_default)
        prior_var_by_scale = np.full(n_scales, np.nan)
    prior_df = prior_df_by_scale[scale_by_rank]
    run = _Run(
        x_flat=x_flat,
        layout=layout,
        config=config,
        pooled=pooled_by_rank,
        sem=sem_by_rank,
        rc=rc_by_rank,
        scale=scale_by_rank,
        prior_df=prior_df,
        prior_weight=prior_df
        * np.where(np.isnan(prior_var_by_scale), 0.0, prior_var_by_scale)[scale_by_rank],
        previous_threshold=np.maximum(rc_by_rank, config.k_eff * config.previous_sd_factor * pooled_by_rank),
        prediction_factor=prediction_factor,
        rupture_factor=rupture_factors(config, prior_df_by_scale, layout.steps + 2),
        out=RuleOutputs.empty(x_flat.size) if out is None else out,
        events=_EventBuffer(),
    )
    state = RuleState.start(layout.unit_of_rank.size)
    for t in range(layout.steps):
        step = _Step.at(t, run, state)
        baseline = _baseline_and_spread(step, state, run)
        ruptures = _ruptures(step, state, baseline, run)
        repairs = _repairs(step, state, run)
        declines = _cusum_declines(step, state, baseline, ruptures, run)
        _state_update(step, state, baseline, ruptures, repairs, declines, run)
        _sudden(step, run)

    out = run.out
    return EngineResult(
        baseline=out.baseline,
        n_baseline=out.n_baseline,
        s_used=out.s_used,
        cusum=out.cusum,
        in_rupture=out.in_rupture,
        open_rupture_by_rank=state.in_rupture,
        events=run.events.arrays(),
    )


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
        return np.full((prior_df.size, size), config.k_eff)
    tail = float(norm.sf(config.k_eff))
    df = prior_df[:, None] + np.maximum(n[None, :] - 1.0, 0.0)
    with np.errstate(divide="ignore"):
        factor = student_t.isf(tail, df) * np.sqrt(1.0 + 1.0 / n[None, :])
    factor[:, 0] = np.inf
    return np.asarray(factor)


def _baseline_and_spread(step: _Step, state: RuleState, run: _Run) -> _Baseline:
    """Baseline and spread at t (4.1), from the unit's sessions before t.

    The baseline is the mean of the prior sessions not inside a rupture. The spread ``s_used``:

    - "predictive" (default): the baseline's own SD shrunk towards the clinic's typical
      within-patient SD, ``s^2 = (d0 * s0^2 + (n - 1) * s_own^2) / (d0 + n - 1)`` (the posterior
      mean of a scaled inverse-chi-square prior fitted to the clinic; Smyth 2004), floored at the
      SEM. A patient with three calm sessions is not trusted to be calmer than the clinic's
      patients usually are; one who is noisy session after session gets a wider bound.
    - "floor": ``max(own SD, pooled within-patient SD, SEM)`` (Gumz et al. 2012: the stricter of
      intra- and inter-individual variability).

    Writes the ``baseline``, ``n_baseline`` and ``s_used`` outputs.
    """
    m, block = step.m, step.block
    n = state.baseline_n[:m]
    total = state.baseline_sum[:m]
    mean = run.out.baseline[block]
    spread = run.out.s_used[block]
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(total, n, out=mean)
        sd = total * mean
        np.subtract(state.baseline_sumsq[:m], sd, out=sd)
        sd /= n - 1
        np.maximum(sd, 0.0, out=sd)
        np.sqrt(sd, out=sd)
    if run.config.spread_rule == "predictive":
        # (d0 s0^2 + (n - 1) s_own^2) / (d0 + n - 1); s_own^2 (n - 1) is the sum of squares.
        own_ss = sd * sd
        own_ss *= np.maximum(n - 1, 0)
        np.nan_to_num(own_ss, copy=False)
        own_ss += run.prior_weight[:m]
        own_ss /= run.prior_df[:m] + np.maximum(n - 1, 0)
        np.sqrt(own_ss, out=spread)
    else:
        np.fmax(sd, run.pooled[:m], out=spread)
    np.fmax(spread, run.sem[:m], out=spread)
    run.out.n_baseline[block] = n
    return _Baseline(n=n, mean=mean, spread=spread, below=mean - step.x)


def _ruptures(step: _Step, state: RuleState, baseline: _Baseline, run: _Run) -> _Ruptures:
    """Ruptures at t (4.2): a session clearly below the unit's own level.

    - with ``min_baseline`` (3)+ baseline sessions, ``x_t <= baseline - k * s_used``
      (rule baseline_k_sd; Stiles et al. 2004, Strauss et al. 2006);
    - with fewer (but 1+), ``x_{t-1} - x_t >= max(RC, k * previous_sd_factor * pooled SD)``
      (rule previous_session).

    No new rupture opens while one is open. Records the rupture events.
    """
    min_baseline = run.config.min_baseline
    t, x, open_ranks = step.t, step.x, step.open_ranks
    n, below, spread = baseline.n, baseline.below, baseline.spread
    factor = run.rupture_factor[run.scale[: step.m], n]
    with np.errstate(invalid="ignore"):
        main = below >= factor * spread - EPS
    main &= n >= min_baseline
    main[open_ranks] = False

    early_ranks = np.empty(0, dtype=np.int64)
    drop = np.empty(0)
    if t >= 1 and int(n.min()) < min_baseline:
        young = np.flatnonzero((n >= 1) & (n < min_baseline))
        if young.size:
            previous = int(run.layout.offset[t - 1])
            drop_young = run.x_flat[previous + young] - x[young]
            hit = drop_young >= run.previous_threshold[young] - EPS
            hit &= ~state.in_rupture[young] & ~main[young]
            early_ranks = young[hit]
            drop = drop_young[hit]
    new = main.copy()
    new[early_ranks] = True

    main_ranks = np.flatnonzero(main)
    if main_ranks.size:
        run.events.add(
            kind=KIND_RUPTURE,
            rule=RULE_BASELINE,
            t=t,
            ranks=main_ranks,
            magnitude=below[main_ranks],
            threshold=factor[main_ranks] * spread[main_ranks],
            baseline=baseline.mean[main_ranks],
            s_used=spread[main_ranks],
            n_baseline=n[main_ranks],
        )
    if early_ranks.size:
        run.events.add(
            kind=KIND_RUPTURE,
            rule=RULE_PREVIOUS,
            t=t,
            ranks=early_ranks,
            magnitude=drop,
            threshold=run.previous_threshold[early_ranks],
            baseline=baseline.mean[early_ranks],
            s_used=spread[early_ranks],
            n_baseline=n[early_ranks],
        )
    return _Ruptures(new=new, new_ranks=np.flatnonzero(new))


def _repairs(step: _Step, state: RuleState, run: _Run) -> _Repairs:
    """Repairs and unrepaired ruptures at t (4.3), for the units inside an open rupture.

    After a rupture at t_r, the first session t_r + j (j = 1..K, K = ``repair_window``) with
    ``x >= rupture baseline - repair_tolerance * rupture s_used`` is a repair (rule
    back_within_s); without one by t_r + K the rupture becomes unrepaired there (rule
    window_ended). Records the repair and unrepaired events.
    """
    config = run.config
    t, x, ranks = step.t, step.x, step.open_ranks
    tolerance = config.repair_tolerance
    level, spread = state.rupture_baseline, state.rupture_spread  # as judged at the rupture
    age = state.rupture_age[ranks] + 1
    repaired = x[ranks] >= level[ranks] - tolerance * spread[ranks] - EPS
    unrepaired = ~repaired & (age >= config.repair_window)
    still_open = ~repaired & ~unrepaired
    repaired_ranks, unrepaired_ranks = ranks[repaired], ranks[unrepaired]

    if repaired_ranks.size:
        target = level[repaired_ranks] - tolerance * spread[repaired_ranks]
        score = state.rupture_score[repaired_ranks]
        run.events.add(
            kind=KIND_REPAIR,
            rule=RULE_BACK,
            t=t,
            ranks=repaired_ranks,
            magnitude=x[repaired_ranks] - score,
            threshold=target - score,
            baseline=level[repaired_ranks],
            s_used=spread[repaired_ranks],
            rupture_t=state.rupture_step[repaired_ranks],
        )
    if unrepaired_ranks.size:
        run.events.add(
            kind=KIND_UNREPAIRED,
            rule=RULE_WINDOW,
            t=t,
            ranks=unrepaired_ranks,
            magnitude=level[unrepaired_ranks] - x[unrepaired_ranks],
            threshold=spread[unrepaired_ranks],
            baseline=level[unrepaired_ranks],
            s_used=spread[unrepaired_ranks],
            rupture_t=state.rupture_step[unrepaired_ranks],
        )
    return _Repairs(
        age=age,
        repaired=repaired,
        repaired_ranks=repaired_ranks,
        unrepaired_ranks=unrepaired_ranks,
        closed_ranks=ranks[~still_open],
        episode_ranks=ranks[~repaired],
    )


def _cusum_declines(
    step: _Step,
    state: RuleState,
    baseline: _Baseline,
    ruptures: _Ruptures,
    run: _Run,
) -> _Declines:
    """Lower CUSUM and declines at t (4.4; Page 1954), on standardised deviations.

    Once the baseline has ``cusum_min_baseline`` sessions,
    ``S_t = max(0, S_{t-1} + min(z_t, cap) - reference)`` with
    ``z_t = (baseline - x_t) / s_used``, divided by ``sqrt(1 + 1/n)`` if ``cusum_prediction_sd``;
    before that S stays 0 (output NaN). ``S_t > cusum_decision`` is a decline (rule lower_cusum),
    except that inside a rupture (open, or opening at t) ``decline_during_rupture`` decides:
    "never", "always", or "if_drifting" (only if S was above 0 just before the rupture). Writes
    the ``cusum`` output and records the decline events.
    """
    config = run.config
    m, n = step.m, baseline.n
    min_n = config.cusum_min_baseline
    started = None if int(n.min()) >= min_n else n >= min_n
    with np.errstate(invalid="ignore", divide="ignore"):
        cusum = baseline.below / baseline.spread
        if config.cusum_prediction_sd:
            cusum /= run.prediction_factor[n]
        np.minimum(cusum, config.cusum_cap, out=cusum)
        cusum += state.cusum[:m]
        cusum -= config.cusum_reference
        np.maximum(cusum, 0.0, out=cusum)
    np.copyto(run.out.cusum[step.block], cusum)
    if started is not None:
        not_started = np.flatnonzero(~started)
        cusum[not_started] = 0.0
        run.out.cusum[step.start + not_started] = np.nan

    ranks = np.flatnonzero(cusum > config.decision_eff)
    during = config.decline_during_rupture
    if ranks.size and during != "always":
        busy = state.in_rupture[ranks] | ruptures.new[ranks]
        if during == "never":
            ranks = ranks[~busy]
        else:
            # Inside a rupture, a decline needs a drift that started before the drop.
            before = np.where(state.in_rupture[ranks], state.cusum_before_rupture[ranks], state.cusum[ranks])
            ranks = ranks[~busy | (before > 0)]
    if ranks.size:
        run.events.add(
            kind=KIND_DECLINE,
            rule=RULE_CUSUM,
            t=step.t,
            ranks=ranks,
            magnitude=cusum[ranks],
            threshold=config.decision_eff,
            baseline=baseline.mean[ranks],
            s_used=baseline.spread[ranks],
            n_baseline=n[ranks],
            cusum=cusum[ranks],
        )
    return _Declines(cusum=cusum, ranks=ranks)


def _state_update(
    step: _Step,
    state: RuleState,
    baseline: _Baseline,
    ruptures: _Ruptures,
    repairs: _Repairs,
    declines: _Declines,
    run: _Run,
) -> None:
    """Carry the state on to step t + 1, given this step's decisions; writes ``in_rupture``.

    - CUSUM: S_t, restarted at 0 after a decline or an unrepaired rupture; a new rupture keeps
      S_{t-1} as the CUSUM before it.
    - Rupture: a new one opens with the baseline, s_used and score at t; repaired and unrepaired
      ones close, the others age by a session. The episode sums start at the rupture's session
      and add each later session that is not a repair.
    - Baseline: x_t joins it unless it is inside a rupture (a new one, or an open one not
      repaired at t; the repair session joins). After an unrepaired rupture the baseline
      restarts from the episode: the rupture's sessions are the unit's new level.
    """
    m, x = step.m, step.x
    new, new_ranks = ruptures.new, ruptures.new_ranks
    unrepaired_ranks, episode_ranks = repairs.unrepaired_ranks, repairs.episode_ranks

    state.cusum_before_rupture[new_ranks] = state.cusum[new_ranks]
    cusum = declines.cusum
    cusum[declines.ranks] = 0.0
    cusum[unrepaired_ranks] = 0.0
    state.cusum[:m] = cusum

    x_new = x[new_ranks]
    state.episode_sum[new_ranks] = x_new
    state.episode_sumsq[new_ranks] = x_new * x_new
    state.episode_n[new_ranks] = 1
    x_episode = x[episode_ranks]
    state.episode_sum[episode_ranks] += x_episode
    state.episode_sumsq[episode_ranks] += x_episode * x_episode
    state.episode_n[episode_ranks] += 1
    state.in_rupture[repairs.closed_ranks] = False
    state.in_rupture[new_ranks] = True
    state.rupture_age[step.open_ranks] = repairs.age
    state.rupture_age[new_ranks] = 0
    state.rupture_step[new_ranks] = step.t
    state.rupture_baseline[new_ranks] = baseline.mean[new_ranks]
    state.rupture_spread[new_ranks] = baseline.spread[new_ranks]
    state.rupture_score[new_ranks] = x_new
    in_rupture = run.out.in_rupture[step.block]
    np.copyto(in_rupture, new)
    in_rupture[episode_ranks] = True

    joins = ~new
    joins[step.open_ranks] = repairs.repaired
    np.add(state.baseline_sum[:m], x, out=state.baseline_sum[:m], where=joins)
    np.add(state.baseline_sumsq[:m], x * x, out=state.baseline_sumsq[:m], where=joins)
    np.add(baseline.n, joins, out=baseline.n)
    state.baseline_sum[unrepaired_ranks] = state.episode_sum[unrepaired_ranks]
    state.baseline_sumsq[unrepaired_ranks] = state.episode_sumsq[unrepaired_ranks]
    state.baseline_n[unrepaired_ranks] = state.episode_n[unrepaired_ranks]
    if run.config.decline_restart:
        # After a decline the usual level is where the alliance is now: a decline that levels
        # off is not raised again, and a further fall is measured from here.
        declined = declines.ranks
        x_declined = x[declined]
        state.baseline_sum[declined] = x_declined
        state.baseline_sumsq[declined] = x_declined * x_declined
        state.baseline_n[declined] = 1


def _sudden(step: _Step, run: _Run) -> None:
    """Sudden gains and losses (4.5; Tang & DeRubeis 1999, as in the R package suddengains).

    For the jump between positions p = t - window and p + 1 (``window`` = ``sudden_window``),
    decided at t, once the sessions after the jump are all in: (1) ``|x_{p+1} - x_p| >= RC``;
    (3) the mean of the ``window`` sessions after differs from the mean of up to ``window``
    before (at least ``sudden_min_before``) by more than ``t_crit * spread``, where spread is
    ``max(pooled SD of both windows, pooled within-patient SD, SEM)`` (``sudden_spread``
    "stricter") or the windows' pooled SD alone ("window"); (2) only if ``sudden_relative`` = f:
    the jump is at least f times the remaining range. Records gain/loss events (rule
    tang_derubeis).
    """
    config = run.config
    window = config.sudden_window
    t, m = step.t, step.m
    p = t - window
    n_before = min(window, p + 1)
    if p < 0 or n_before < config.sudden_min_before:
        return
    t_crit = config.t_critical(n_before, window)
    pooled, sem, rc = run.pooled[:m], run.sem[:m], run.rc[:m]

    def at(pos: int) -> np.ndarray:
        start = int(run.layout.offset[pos])
        return run.x_flat[start : start + m]

    after = [at(q) for q in range(p + 1, p + 1 + window)]
    before = [at(q) for q in range(p - n_before + 1, p + 1)]
    x_p, x_next = before[-1], after[0]
    jump = x_next - x_p
    big = np.abs(jump) >= rc - EPS
    if not big.any():
        return
    idx = np.flatnonzero(big)
    a = np.stack([v[idx] for v in after])
    b = np.stack([v[idx] for v in before])
    mean_a = a.sum(axis=0) / window
    mean_b = b.sum(axis=0) / n_before
    da = a - mean_a
    db = b - mean_b
    ss = (da * da).sum(axis=0) + (db * db).sum(axis=0)
    sd_window = np.sqrt(ss / (window + n_before - 2))
    stricter = config.sudden_spread == "stricter"
    spread = np.fmax(np.fmax(sd_window, pooled[idx]), sem[idx]) if stricter else sd_window
    j = jump[idx]
    xp = x_p[idx]
    gain = (j > 0) & (mean_a - mean_b > t_crit * spread)
    loss = (j < 0) & (mean_b - mean_a > t_crit * spread)
    relative = config.sudden_relative
    if relative is not None:
        gain &= j >= relative * (config.scale_max - xp) - EPS
        loss &= -j >= relative * (xp - config.scale_min) - EPS
    for kind, mask in ((KIND_GAIN, gain), (KIND_LOSS, loss)):
        sel = np.flatnonzero(mask)
        if sel.size:
            run.events.add(
                kind=kind,
                rule=RULE_TD,
                t=t,
                ranks=idx[sel],
                magnitude=np.abs(j[sel]),
                threshold=rc[idx[sel]],
                from_t=p,
                to_t=p + 1,
                mean_before=mean_b[sel],
                mean_after=mean_a[sel],
                sd_window=spread[sel],
                t_crit=t_crit,
            )
