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
    (patient, scale, session).
    """

    n_scales: int
    n_unit: np.ndarray
    unit_of_rank: np.ndarray
    rank_of_unit: np.ndarray
    offset: np.ndarray
    active: np.ndarray
    gather: np.ndarray
    unit_start: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.active.size)


def build_layout(
    codes: np.ndarray,
    values: np.ndarray,
    session: np.ndarray,
    n_patients: int,
) -> tuple[Layout, np.ndarray, np.ndarray]:
    """Layout for observations sorted by (patient code, session), and the flat arrays.

    ``codes`` (N,) are sorted patient codes, ``values`` (N, S) the scores (NaN = missing) and
    ``session`` (N,) the session numbers. Returns the layout, the scores and the session numbers
    in the layout's flat step-major order.
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
    sess_flat = np.empty(total, dtype=np.int64)
    gather = np.empty(total, dtype=np.int64)
    # One scale at a time: arrays of one row per response rather than one per cell, which the
    # allocator can recycle between scales (full-length temporaries are fresh pages each time).
    unit_base = codes * n_scales
    for col in range(n_scales):
        rows = np.flatnonzero(valid[:, col])
        pos = rank_in_unit[rows, col].astype(np.int64)
        unit = unit_base[rows]
        unit += col
        flat = offset[pos]
        flat += rank_of_unit[unit]
        x_flat[flat] = values[rows, col]
        sess_flat[flat] = session[rows]
        pos += unit_start[unit]
        gather[pos] = flat
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
    )
    return layout, x_flat, sess_flat


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


def run_rules(
    x_flat: np.ndarray,
    layout: Layout,
    *,
    pooled_by_rank: np.ndarray,
    sem_by_rank: np.ndarray,
    rc_by_rank: np.ndarray,
    config: AnalysisConfig,
) -> EngineResult:
    """Run baseline, rupture/repair, CUSUM decline and sudden-change rules over all units.

    ``x_flat`` holds the scores in the layout's step-major order; the ``*_by_rank`` arrays give
    each unit's clinic pooled within-patient SD, SEM and RC (scale-specific). Definitions are
    those of methods.md section 4 and docs/methods.md; :mod:`monitoring.analytics.reference` is
    a line-by-line per-patient transcription used to test this function.
    """
    n_ranks = layout.unit_of_rank.size
    total = x_flat.size
    k = config.k
    min_base = config.min_baseline
    big_k = config.repair_window
    ref, h, cap = config.cusum_reference, config.cusum_decision, config.cusum_cap
    cmin = config.cusum_min_baseline
    tol = config.repair_tolerance
    during = config.decline_during_rupture
    pred_sd = config.cusum_prediction_sd
    # sqrt(1 + 1/n) by baseline size n, looked up rather than computed every step.
    with np.errstate(divide="ignore"):
        pred_table = np.sqrt(1.0 + 1.0 / np.arange(layout.steps + 2, dtype=float))

    # Per-observation outputs, step-major like x_flat (written as contiguous slices; the
    # caller gathers them into output order).
    baseline_f = np.empty(total)
    n_base_f = np.empty(total, dtype=np.int32)
    s_used_f = np.empty(total)
    cusum_f = np.empty(total)
    in_rupture_f = np.empty(total, dtype=bool)

    base_sum = np.zeros(n_ranks)
    base_sq = np.zeros(n_ranks)
    base_n = np.zeros(n_ranks, dtype=np.int64)
    cus = np.zeros(n_ranks)
    in_rupt = np.zeros(n_ranks, dtype=bool)
    rupt_j = np.zeros(n_ranks, dtype=np.int64)
    rupt_t = np.full(n_ranks, -1, dtype=np.int64)
    rupt_base = np.full(n_ranks, np.nan)
    rupt_s = np.full(n_ranks, np.nan)
    rupt_x = np.full(n_ranks, np.nan)
    rupt_cus = np.zeros(n_ranks)  # CUSUM just before the open rupture
    ep_sum = np.zeros(n_ranks)
    ep_sq = np.zeros(n_ranks)
    ep_n = np.zeros(n_ranks, dtype=np.int64)
    early_thr_all = np.maximum(rc_by_rank, k * config.previous_sd_factor * pooled_by_rank)

    events = _EventBuffer()
    window = config.sudden_window
    min_before = config.sudden_min_before
    relative = config.sudden_relative
    lo, hi = config.scale_min, config.scale_max

    for t in range(layout.steps):
        m = int(layout.active[t])
        o = int(layout.offset[t])
        sl = slice(o, o + m)
        x = x_flat[sl]
        bn = base_n[:m]
        bs = base_sum[:m]
        bq = base_sq[:m]
        # Outputs are written in place into their flat slices; only few temporaries per step.
        mean = baseline_f[sl]
        s = s_used_f[sl]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(bs, bn, out=mean)
            var = bs * mean
            np.subtract(bq, var, out=var)
            var /= bn - 1
            np.maximum(var, 0.0, out=var)
            np.sqrt(var, out=var)
        np.fmax(var, pooled_by_rank[:m], out=s)
        np.fmax(s, sem_by_rank[:m], out=s)
        n_base_f[sl] = bn
        dev = mean - x  # points below the baseline

        # Units inside an open rupture are few: handle them by index.
        ir = np.flatnonzero(in_rupt[:m])

        # Rupture: person-relative drop (3+ baseline sessions) or drop since last session.
        with np.errstate(invalid="ignore"):
            main = dev >= k * s - EPS
        main &= bn >= min_base
        main[ir] = False
        early_idx = np.empty(0, dtype=np.int64)
        if t >= 1 and int(bn.min()) < min_base:
            young = np.flatnonzero((bn >= 1) & (bn < min_base))
            if young.size:
                prev_o = int(layout.offset[t - 1])
                drop_y = x_flat[prev_o + young] - x[young]
                hit = (drop_y >= early_thr_all[young] - EPS) & ~in_rupt[young] & ~main[young]
                early_idx = young[hit]
                drop_e = drop_y[hit]
        rupt = main.copy()
        rupt[early_idx] = True
        main_idx = np.flatnonzero(main)
        rupt_idx = np.flatnonzero(rupt)

        # Repair or unrepaired, for units inside an open rupture.
        xi = x[ir]
        rj = rupt_j[ir] + 1
        rep_i = xi >= rupt_base[ir] - tol * rupt_s[ir] - EPS
        unrep_i = ~rep_i & (rj >= big_k)
        stay_i = ~rep_i & ~unrep_i
        rep_idx, unrep_idx = ir[rep_i], ir[unrep_i]

        # Lower CUSUM on standardised deviations from the baseline (Page 1954), capped per session.
        all_ok = int(bn.min()) >= cmin
        ok = None if all_ok else bn >= cmin
        with np.errstate(invalid="ignore", divide="ignore"):
            s_new = dev / s
            if pred_sd:
                s_new /= pred_table[bn]
            np.minimum(s_new, cap, out=s_new)
            s_new += cus[:m]
            s_new -= ref
            np.maximum(s_new, 0.0, out=s_new)
        np.copyto(cusum_f[sl], s_new)
        if ok is not None:
            not_ok = np.flatnonzero(~ok)
            s_new[not_ok] = 0.0  # before the CUSUM starts it stays at zero
            cusum_f[o + not_ok] = np.nan
        dec_idx = np.flatnonzero(s_new > h)
        if dec_idx.size and during != "always":
            busy = in_rupt[dec_idx] | rupt[dec_idx]
            if during == "never":
                dec_idx = dec_idx[~busy]
            else:
                # Inside a rupture, a decline needs a drift that started before the drop.
                before = np.where(in_rupt[dec_idx], rupt_cus[dec_idx], cus[dec_idx])
                dec_idx = dec_idx[~busy | (before > 0)]

        # Record events.
        if main_idx.size:
            events.add(
                kind=KIND_RUPTURE,
                rule=RULE_BASELINE,
                t=t,
                ranks=main_idx,
                magnitude=dev[main_idx],
                threshold=k * s[main_idx],
                baseline=mean[main_idx],
                s_used=s[main_idx],
                n_baseline=bn[main_idx],
            )
        if early_idx.size:
            events.add(
                kind=KIND_RUPTURE,
                rule=RULE_PREVIOUS,
                t=t,
                ranks=early_idx,
                magnitude=drop_e,
                threshold=early_thr_all[early_idx],
                baseline=mean[early_idx],
                s_used=s[early_idx],
                n_baseline=bn[early_idx],
            )
        if rep_idx.size:
            target = rupt_base[rep_idx] - tol * rupt_s[rep_idx]
            events.add(
                kind=KIND_REPAIR,
                rule=RULE_BACK,
                t=t,
                ranks=rep_idx,
                magnitude=x[rep_idx] - rupt_x[rep_idx],
                threshold=target - rupt_x[rep_idx],
                baseline=rupt_base[rep_idx],
                s_used=rupt_s[rep_idx],
                rupture_t=rupt_t[rep_idx],
            )
        if unrep_idx.size:
            events.add(
                kind=KIND_UNREPAIRED,
                rule=RULE_WINDOW,
                t=t,
                ranks=unrep_idx,
                magnitude=rupt_base[unrep_idx] - x[unrep_idx],
                threshold=rupt_s[unrep_idx],
                baseline=rupt_base[unrep_idx],
                s_used=rupt_s[unrep_idx],
                rupture_t=rupt_t[unrep_idx],
            )
        if dec_idx.size:
            events.add(
                kind=KIND_DECLINE,
                rule=RULE_CUSUM,
                t=t,
                ranks=dec_idx,
                magnitude=s_new[dec_idx],
                threshold=h,
                baseline=mean[dec_idx],
                s_used=s[dec_idx],
                n_baseline=bn[dec_idx],
                cusum=s_new[dec_idx],
            )

        # State updates. Sessions inside a rupture stay out of the baseline.
        rupt_cus[rupt_idx] = cus[rupt_idx]
        s_new[dec_idx] = 0.0
        s_new[unrep_idx] = 0.0
        cus[:m] = s_new
        add = ~rupt
        add[ir] = rep_i
        np.add(bs, x, out=bs, where=add)
        np.add(bq, x * x, out=bq, where=add)
        bn += add
        xr = x[rupt_idx]
        ep_sum[rupt_idx] = xr
        ep_sq[rupt_idx] = xr * xr
        ep_n[rupt_idx] = 1
        episode = ir[~rep_i]  # stayed in the rupture or became unrepaired now
        xe = x[episode]
        ep_sum[episode] += xe
        ep_sq[episode] += xe * xe
        ep_n[episode] += 1
        # Not back within K sessions: the rupture's sessions become the new baseline.
        base_sum[unrep_idx] = ep_sum[unrep_idx]
        base_sq[unrep_idx] = ep_sq[unrep_idx]
        base_n[unrep_idx] = ep_n[unrep_idx]
        in_rupt[ir[~stay_i]] = False
        in_rupt[rupt_idx] = True
        rupt_j[ir] = rj
        rupt_j[rupt_idx] = 0
        rupt_t[rupt_idx] = t
        rupt_base[rupt_idx] = mean[rupt_idx]
        rupt_s[rupt_idx] = s[rupt_idx]
        rupt_x[rupt_idx] = xr
        flag = in_rupture_f[sl]
        np.copyto(flag, rupt)
        flag[episode] = True

        # Sudden gain / loss between positions p and p+1, decided once the window after is full.
        p = t - window
        n_before = min(window, p + 1)
        if p >= 0 and n_before >= min_before:
            _sudden(
                events,
                x_flat,
                layout,
                t=t,
                m=m,
                p=p,
                window=window,
                n_before=n_before,
                pooled=pooled_by_rank[:m],
                sem=sem_by_rank[:m],
                rc=rc_by_rank[:m],
                t_crit=config.t_critical(n_before, window),
                stricter=config.sudden_spread == "stricter",
                relative=relative,
                lo=lo,
                hi=hi,
            )

    return EngineResult(
        baseline=baseline_f,
        n_baseline=n_base_f,
        s_used=s_used_f,
        cusum=cusum_f,
        in_rupture=in_rupture_f,
        open_rupture_by_rank=in_rupt,
        events=events.arrays(),
    )


def _sudden(
    events: _EventBuffer,
    x_flat: np.ndarray,
    layout: Layout,
    *,
    t: int,
    m: int,
    p: int,
    window: int,
    n_before: int,
    pooled: np.ndarray,
    sem: np.ndarray,
    rc: np.ndarray,
    t_crit: float,
    stricter: bool,
    relative: float | None,
    lo: float,
    hi: float,
) -> None:
    """Tang & DeRubeis (1999) criteria 1 and 3 (and optionally 2) for the jump p -> p+1."""

    def at(pos: int) -> np.ndarray:
        start = int(layout.offset[pos])
        return x_flat[start : start + m]

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
    spread = np.fmax(np.fmax(sd_window, pooled[idx]), sem[idx]) if stricter else sd_window
    j = jump[idx]
    xp = x_p[idx]
    gain = (j > 0) & (mean_a - mean_b > t_crit * spread)
    loss = (j < 0) & (mean_b - mean_a > t_crit * spread)
    if relative is not None:
        gain &= j >= relative * (hi - xp) - EPS
        loss &= -j >= relative * (xp - lo) - EPS
    for kind, mask in ((KIND_GAIN, gain), (KIND_LOSS, loss)):
        sel = np.flatnonzero(mask)
        if sel.size:
            events.add(
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
