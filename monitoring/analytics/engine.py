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
    "magnitude", "threshold", "baseline", "s_used", "n_baseline", "cusum",
    "mean_before", "mean_after", "sd_window", "t_crit",
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


def build_layout(codes: np.ndarray, valid: np.ndarray, n_patients: int) -> tuple[Layout, np.ndarray]:
    """Layout for observations sorted by (patient code, session).

    ``codes`` (N,) are sorted patient codes, ``valid`` (N, S) marks present scores. Returns the
    layout and, for every valid cell in row-major order of ``valid``, its flat index.
    """
    n_rows, n_scales = valid.shape
    starts = np.searchsorted(codes, np.arange(n_patients), side="left")
    cum = np.cumsum(valid, axis=0, dtype=np.int64)
    before = np.zeros((n_patients, n_scales), dtype=np.int64)
    nonzero = starts > 0
    before[nonzero] = cum[starts[nonzero] - 1]
    ends = np.append(starts[1:], n_rows)
    at_end = cum[ends - 1] if n_rows else np.zeros((0, n_scales), dtype=np.int64)
    n_unit = (at_end - before).reshape(-1)
    rank_in_unit = cum - 1 - before[codes]
    unit_of_rank = np.argsort(-n_unit, kind="stable")
    rank_of_unit = np.empty_like(unit_of_rank)
    rank_of_unit[unit_of_rank] = np.arange(unit_of_rank.size)
    steps = int(n_unit.max()) if n_unit.size else 0
    counts = np.bincount(n_unit, minlength=steps + 1)
    active = (n_unit.size - np.cumsum(counts))[:steps]  # units with more than t sessions
    offset = np.concatenate(([0], np.cumsum(active)[:-1])).astype(np.int64)
    rows, cols = np.nonzero(valid)
    unit = codes[rows].astype(np.int64) * n_scales + cols
    pos = rank_in_unit[rows, cols]
    flat = offset[pos] + rank_of_unit[unit]
    unit_start = np.concatenate(([0], np.cumsum(n_unit)[:-1])).astype(np.int64)
    gather = np.empty(flat.size, dtype=np.int64)
    gather[unit_start[unit] + pos] = flat
    layout = Layout(
        n_scales=n_scales, n_unit=n_unit, unit_of_rank=unit_of_rank, rank_of_unit=rank_of_unit,
        offset=offset, active=active, gather=gather, unit_start=unit_start,
    )
    return layout, flat


@dataclass
class _EventBuffer:
    """Collects the few event cells found at each step; concatenated once at the end."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, *, kind: int, rule: int | np.ndarray, t: int, ranks: np.ndarray, **values: np.ndarray | float | int) -> None:
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
    """Flat (step-major) per-observation outputs plus the raw event cells."""

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

    baseline_f = np.full(total, np.nan)
    n_base_f = np.zeros(total, dtype=np.int32)
    s_used_f = np.full(total, np.nan)
    cusum_f = np.full(total, np.nan)
    in_rupture_f = np.zeros(total, dtype=bool)

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
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = bs / bn
            var = (bq - bs * mean) / (bn - 1)
        sd_own = np.sqrt(np.maximum(var, 0.0))
        s = np.fmax(np.fmax(sd_own, pooled_by_rank[:m]), sem_by_rank[:m])
        baseline_f[sl] = mean
        n_base_f[sl] = bn
        s_used_f[sl] = s

        inr = in_rupt[:m].copy()

        # Rupture: person-relative drop (3+ baseline sessions) or drop since last session.
        thr_main = k * s
        with np.errstate(invalid="ignore"):
            main = ~inr & (bn >= min_base) & (mean - x >= thr_main - EPS)
        if t >= 1:
            prev = x_flat[int(layout.offset[t - 1]): int(layout.offset[t - 1]) + m]
            drop = prev - x
            early_thr = early_thr_all[:m]
            early = ~inr & (bn >= 1) & (bn < min_base) & (drop >= early_thr - EPS)
            early &= ~main
        else:
            early = np.zeros(m, dtype=bool)
        rupt = main | early

        # Repair or unrepaired, for units inside an open rupture.
        rj_new = rupt_j[:m] + 1
        rep = inr & (x >= rupt_base[:m] - tol * rupt_s[:m] - EPS)
        unrep = inr & ~rep & (rj_new >= big_k)
        stay = inr & ~rep & ~unrep

        # Lower CUSUM on standardised deviations from the baseline (Page 1954), capped per session.
        ok = bn >= cmin
        ref_mean, ref_s = mean, s
        with np.errstate(invalid="ignore"):
            z = (ref_mean - x) / ref_s
            s_new = np.where(ok, np.maximum(0.0, cus[:m] + np.minimum(z, cap) - ref), cus[:m])
        cusum_f[sl] = np.where(ok, s_new, np.nan)
        dec = ok & (s_new > h)
        if during == "never":
            dec &= ~(inr | rupt)
        elif during == "if_drifting":
            # Inside a rupture, a decline needs a drift that started before the drop.
            drift_before = np.where(inr, rupt_cus[:m], cus[:m]) > 0
            dec &= ~(inr | rupt) | drift_before

        # Record events (few cells: flatnonzero on small boolean arrays).
        idx = np.flatnonzero(main)
        if idx.size:
            events.add(
                kind=KIND_RUPTURE, rule=RULE_BASELINE, t=t, ranks=idx,
                magnitude=(mean - x)[idx], threshold=thr_main[idx], baseline=mean[idx],
                s_used=s[idx], n_baseline=bn[idx],
            )
        idx = np.flatnonzero(early)
        if idx.size:
            events.add(
                kind=KIND_RUPTURE, rule=RULE_PREVIOUS, t=t, ranks=idx,
                magnitude=drop[idx], threshold=early_thr[idx], baseline=mean[idx],
                s_used=s[idx], n_baseline=bn[idx],
            )
        idx = np.flatnonzero(rep)
        if idx.size:
            target = rupt_base[idx] - tol * rupt_s[idx]
            events.add(
                kind=KIND_REPAIR, rule=RULE_BACK, t=t, ranks=idx,
                magnitude=x[idx] - rupt_x[idx], threshold=target - rupt_x[idx],
                baseline=rupt_base[idx], s_used=rupt_s[idx], rupture_t=rupt_t[idx],
            )
        idx = np.flatnonzero(unrep)
        if idx.size:
            events.add(
                kind=KIND_UNREPAIRED, rule=RULE_WINDOW, t=t, ranks=idx,
                magnitude=rupt_base[idx] - x[idx], threshold=rupt_s[idx],
                baseline=rupt_base[idx], s_used=rupt_s[idx], rupture_t=rupt_t[idx],
            )
        idx = np.flatnonzero(dec)
        if idx.size:
            events.add(
                kind=KIND_DECLINE, rule=RULE_CUSUM, t=t, ranks=idx,
                magnitude=s_new[idx], threshold=h, baseline=ref_mean[idx], s_used=ref_s[idx],
                n_baseline=bn[idx], cusum=s_new[idx],
            )

        # State updates. Sessions inside a rupture stay out of the baseline.
        cus_before = cus[:m].copy()
        s_new[dec] = 0.0
        s_new[unrep] = 0.0
        cus[:m] = s_new
        add = (~inr & ~rupt) | rep
        base_sum[:m] = bs + np.where(add, x, 0.0)
        base_sq[:m] = bq + np.where(add, x * x, 0.0)
        base_n[:m] = bn + add
        in_episode = stay | unrep
        ep_sum[:m] = np.where(rupt, x, np.where(in_episode, ep_sum[:m] + x, ep_sum[:m]))
        ep_sq[:m] = np.where(rupt, x * x, np.where(in_episode, ep_sq[:m] + x * x, ep_sq[:m]))
        ep_n[:m] = np.where(rupt, 1, np.where(in_episode, ep_n[:m] + 1, ep_n[:m]))
        if unrep.any():
            # Not back within K sessions: the rupture's sessions become the new baseline.
            base_sum[:m] = np.where(unrep, ep_sum[:m], base_sum[:m])
            base_sq[:m] = np.where(unrep, ep_sq[:m], base_sq[:m])
            base_n[:m] = np.where(unrep, ep_n[:m], base_n[:m])
        in_rupt[:m] = rupt | stay
        rupt_j[:m] = np.where(rupt, 0, np.where(inr, rj_new, rupt_j[:m]))
        if rupt.any():
            rupt_cus[:m] = np.where(rupt, cus_before, rupt_cus[:m])
            rupt_t[:m] = np.where(rupt, t, rupt_t[:m])
            rupt_base[:m] = np.where(rupt, mean, rupt_base[:m])
            rupt_s[:m] = np.where(rupt, s, rupt_s[:m])
            rupt_x[:m] = np.where(rupt, x, rupt_x[:m])
        in_rupture_f[sl] = rupt | stay | unrep

        # Sudden gain / loss between positions p and p+1, decided once the window after is full.
        p = t - window
        n_before = min(window, p + 1)
        if p >= 0 and n_before >= min_before:
            _sudden(
                events, x_flat, layout, t=t, m=m, p=p, window=window, n_before=n_before,
                pooled=pooled_by_rank[:m], sem=sem_by_rank[:m], rc=rc_by_rank[:m],
                t_crit=config.t_critical(n_before, window), stricter=config.sudden_spread == "stricter",
                relative=relative, lo=lo, hi=hi,
            )

    return EngineResult(
        baseline=baseline_f, n_baseline=n_base_f, s_used=s_used_f, cusum=cusum_f,
        in_rupture=in_rupture_f, open_rupture_by_rank=in_rupt, events=events.arrays(),
    )


def _sudden(
    events: _EventBuffer, x_flat: np.ndarray, layout: Layout, *, t: int, m: int, p: int,
    window: int, n_before: int, pooled: np.ndarray, sem: np.ndarray, rc: np.ndarray,
    t_crit: float, stricter: bool, relative: float | None, lo: float, hi: float,
) -> None:
    """Tang & DeRubeis (1999) criteria 1 and 3 (and optionally 2) for the jump p -> p+1."""

    def at(pos: int) -> np.ndarray:
        start = int(layout.offset[pos])
        return x_flat[start: start + m]

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
                kind=kind, rule=RULE_TD, t=t, ranks=idx[sel], magnitude=np.abs(j[sel]),
                threshold=rc[idx[sel]], from_t=p, to_t=p + 1, mean_before=mean_b[sel],
                mean_after=mean_a[sel], sd_window=spread[sel], t_crit=t_crit,
            )
