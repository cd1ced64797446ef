"""A straightforward per-patient implementation of the same rules (groupby-apply, plain Python).

Two uses: the benchmark times it against the engine (bench/analytics.py), and the
tests check that both give identical events on random cohorts. It is deliberately written the
obvious way, one patient and one session at a time, as a reviewer would check the rules by hand;
it is not meant to be used in the product.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.clinic import ClinicParameters
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.engine import EPS

_KEYS = (
    c.PATIENT,
    c.SESSION,
    c.SCALE,
    c.KIND,
    c.MAGNITUDE,
    c.THRESHOLD,
    c.RUPTURE_SESSION,
    c.FROM_SESSION,
    c.TO_SESSION,
)


def _scale_series(group: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    group = group.sort_values(c.SESSION)
    sessions = [int(s) for s in group[c.SESSION]]
    goal = group[c.GOAL].tolist()
    task = group[c.TASK].tolist()
    bond = group[c.BOND].tolist()
    if c.TOTAL in group.columns:
        total = group[c.TOTAL].tolist()
    else:  # a total needs all three subscales
        total = [(g + t + b) / 3.0 for g, t, b in zip(goal, task, bond, strict=True)]
    agreement = [(g + t) / 2.0 for g, t in zip(goal, task, strict=True)]
    series = {c.GOAL: goal, c.TASK: task, c.BOND: bond, c.TOTAL: total, c.AGREEMENT: agreement}
    return {
        name: [(s, float(v)) for s, v in zip(sessions, values, strict=True) if not math.isnan(v)]
        for name, values in series.items()
    }


def _rupture_factor(config: AnalysisConfig, prior_df: float, n: int) -> float:
    """How many spreads below the baseline a rupture is, with n baseline sessions (one value at a
    time, with scipy's t distribution, as a reviewer would compute it by hand)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    if config.spread_rule == "floor":
        return config.k_eff
    return float(student_t.isf(norm.sf(config.k_eff), prior_df + max(n - 1, 0)) * math.sqrt(1.0 + 1.0 / n))


def unit_rules(
    obs: list[tuple[int, float]],
    *,
    pooled: float,
    sem: float,
    rc: float,
    config: AnalysisConfig,
    prior_df: float = math.nan,
    prior_var: float = math.nan,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rules of docs/methods.md for one (patient, scale) series; returns (session rows, events)."""
    big_k, tol = config.repair_window, config.repair_tolerance
    k = config.k_eff
    early_thr = max(rc, k * config.previous_sd_factor * pooled)
    base_sum = base_sq = 0.0
    base_n = 0
    cus = 0.0
    in_rupt = False
    rupt_j = rupt_t = 0
    rupt_base = rupt_s = rupt_x = rupt_cus = math.nan
    ep_sum = ep_sq = 0.0
    ep_n = 0
    run_from = -1  # first session (index) of the current CUSUM run, -1 while the sum is 0
    last_rupture = -1  # index of the latest rupture
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    xs = [x for _, x in obs]
    sess = [s for s, _ in obs]
    for t, (session, x) in enumerate(obs):
        bn = base_n
        mean = base_sum / bn if bn else math.nan
        sd_own = math.sqrt(max((base_sq - base_sum * mean) / (bn - 1), 0.0)) if bn >= 2 else math.nan
        if config.spread_rule == "predictive":
            own_ss = (bn - 1) * sd_own * sd_own if bn >= 2 else 0.0
            s = max(math.sqrt((prior_df * prior_var + own_ss) / (prior_df + max(bn - 1, 0))), sem)
        else:
            s = max(v for v in (sd_own, pooled, sem) if not math.isnan(v))
        factor = _rupture_factor(config, prior_df, bn) if bn >= 1 else math.inf
        main = (not in_rupt) and bn >= config.min_baseline and mean - x >= factor * s - EPS
        early = (
            t >= 1
            and not in_rupt
            and 1 <= bn < config.min_baseline
            and xs[t - 1] - x >= early_thr - EPS
            and not main
        )
        rupt = main or early
        rep = in_rupt and x >= rupt_base - tol * rupt_s - EPS
        unrep = in_rupt and not rep and rupt_j + 1 >= big_k
        stay = in_rupt and not rep and not unrep
        ok = bn >= config.cusum_min_baseline
        s_prev = cus
        if ok:
            z = (mean - x) / s
            if config.cusum_prediction_sd:
                z = z / math.sqrt(1.0 + 1.0 / bn)
            s_new = max(0.0, cus + min(z, config.cusum_cap) - config.cusum_reference)
        else:
            s_new = cus
        # The decline's window: the run of positive sums it ends (a new run where the sum was 0).
        starts = ok and s_new > 0 and s_prev <= 0
        run_from = -1 if not (ok and s_new > 0) else (t if starts else run_from)
        dec = ok and s_new > config.decision_eff
        if config.decline_during_rupture == "never":
            dec = dec and not (in_rupt or rupt)
        elif config.decline_during_rupture == "if_drifting":
            drift_before = (rupt_cus if in_rupt else s_prev) > 0
            dec = dec and ((not (in_rupt or rupt)) or drift_before)
        base = {c.SESSION: session}
        if main:
            events.append({**base, c.KIND: c.RUPTURE, c.MAGNITUDE: mean - x, c.THRESHOLD: factor * s})
        if early:
            events.append({**base, c.KIND: c.RUPTURE, c.MAGNITUDE: xs[t - 1] - x, c.THRESHOLD: early_thr})
        if rep:
            target = rupt_base - tol * rupt_s
            events.append(
                {
                    **base,
                    c.KIND: c.REPAIR,
                    c.MAGNITUDE: x - rupt_x,
                    c.THRESHOLD: target - rupt_x,
                    c.RUPTURE_SESSION: sess[rupt_t],
                }
            )
        if unrep:
            events.append(
                {
                    **base,
                    c.KIND: c.UNREPAIRED,
                    c.MAGNITUDE: rupt_base - x,
                    c.THRESHOLD: rupt_s,
                    c.RUPTURE_SESSION: sess[rupt_t],
                }
            )
        if dec:
            # The decline's window is its CUSUM run; a rupture inside it is the drop it comes from.
            rupture_at = t if rupt else last_rupture
            inside = rupture_at >= run_from
            events.append(
                {
                    **base,
                    c.KIND: c.DECLINE,
                    c.MAGNITUDE: s_new,
                    c.THRESHOLD: config.decision_eff,
                    c.RUPTURE_SESSION: sess[rupture_at] if inside else math.nan,
                    c.FROM_SESSION: sess[run_from],
                    c.TO_SESSION: session,
                }
            )
        rows.append(
            {
                c.SESSION: session,
                c.SCORE: x,
                c.BASELINE: mean,
                c.S_USED: s,
                c.CUSUM: s_new if ok else math.nan,
                c.IN_RUPTURE: rupt or stay or unrep,
            }
        )
        # State updates, in the engine's order.
        cus = 0.0 if (dec or unrep) else s_new
        if (not in_rupt and not rupt) or rep:
            base_sum, base_sq, base_n = base_sum + x, base_sq + x * x, base_n + 1
        if rupt:
            ep_sum, ep_sq, ep_n = x, x * x, 1
        elif stay or unrep:
            ep_sum, ep_sq, ep_n = ep_sum + x, ep_sq + x * x, ep_n + 1
        if unrep:
            base_sum, base_sq, base_n = ep_sum, ep_sq, ep_n
        if dec and config.decline_restart:  # the usual level is where the alliance is now
            base_sum, base_sq, base_n = x, x * x, 1
        was_in = in_rupt
        in_rupt = rupt or stay
        if rupt:
            last_rupture = t
            rupt_j, rupt_t, rupt_base, rupt_s, rupt_x, rupt_cus = 0, t, mean, s, x, s_prev
        elif was_in:
            rupt_j += 1
        events.extend(_sudden(xs, sess, t, pooled=pooled, sem=sem, rc=rc, config=config))
    return rows, events


def _sudden(
    xs: list[float],
    sess: list[int],
    t: int,
    *,
    pooled: float,
    sem: float,
    rc: float,
    config: AnalysisConfig,
) -> list[dict[str, Any]]:
    w = config.sudden_window
    p = t - w
    nb = min(w, p + 1)
    if p < 0 or nb < config.sudden_min_before:
        return []
    jump = xs[p + 1] - xs[p]
    if abs(jump) < rc - EPS:
        return []
    after = xs[p + 1 : p + 1 + w]
    before = xs[p - nb + 1 : p + 1]
    mean_a = sum(after) / w
    mean_b = sum(before) / nb
    ss = sum((v - mean_a) * (v - mean_a) for v in after) + sum((v - mean_b) * (v - mean_b) for v in before)
    sd = math.sqrt(ss / (w + nb - 2))
    spread = max(sd, pooled, sem) if config.sudden_spread == "stricter" else sd
    t_crit = config.t_critical(nb, w)
    gain = jump > 0 and mean_a - mean_b > t_crit * spread
    loss = jump < 0 and mean_b - mean_a > t_crit * spread
    if config.sudden_relative is not None:
        gain = gain and jump >= config.sudden_relative * (config.scale_max - xs[p]) - EPS
        loss = loss and -jump >= config.sudden_relative * (xs[p] - config.scale_min) - EPS
    if not (gain or loss):
        return []
    return [
        {
            c.SESSION: sess[t],
            c.KIND: c.SUDDEN_GAIN if gain else c.SUDDEN_LOSS,
            c.MAGNITUDE: abs(jump),
            c.THRESHOLD: rc,
            c.FROM_SESSION: sess[p],
            c.TO_SESSION: sess[p + 1],
        }
    ]


def patient_rules(group: pd.DataFrame, *, clinic: ClinicParameters, config: AnalysisConfig) -> pd.DataFrame:
    """All rules for one patient (every scale); the per-patient function of the groupby-apply."""
    frames = []
    for scale, obs in _scale_series(group).items():
        params = clinic[scale]
        sem = config.sem(scale, params)
        prior_df, prior_var = params.variance_prior(
            default_df=config.prior_df_default, method=config.spread_floor
        )
        pooled = (
            math.sqrt(prior_var)
            if config.spread_rule == "predictive"
            else params.floor_sd(config.spread_floor)
        )
        rows, events = unit_rules(
            obs,
            pooled=pooled,
            sem=sem,
            rc=1.96 * math.sqrt(2.0) * sem,
            config=config,
            prior_df=prior_df,
            prior_var=prior_var,
        )
        values = [x for _, x in obs]
        level = sum(values) / len(values) if values else math.nan
        for row in rows:
            row[c.LEVEL] = level
            row[c.STATE] = row[c.SCORE] - level
        row_cols = [c.SESSION, c.SCORE, c.BASELINE, c.S_USED, c.CUSUM, c.IN_RUPTURE, c.LEVEL, c.STATE]
        frames.append(pd.DataFrame(rows, columns=row_cols).assign(**{c.SCALE: scale, "event": False}))
        if events:
            frames.append(pd.DataFrame(events).assign(**{c.SCALE: scale, "event": True}))
    return pd.concat(frames, ignore_index=True)


def reference_analyse(
    scores: pd.DataFrame, *, clinic: ClinicParameters, config: AnalysisConfig
) -> pd.DataFrame:
    """Per-patient groupby-apply of the rules; returns session rows and event rows together
    (``event`` column), the way a straightforward implementation would."""
    return scores.groupby(c.PATIENT, sort=True, group_keys=True)[list(scores.columns)].apply(
        patient_rules,
        clinic=clinic,
        config=config,
    )


def reference_events(
    scores: pd.DataFrame, *, clinic: ClinicParameters, config: AnalysisConfig
) -> pd.DataFrame:
    """Only the events of :func:`reference_analyse`, in the engine's order, with the key columns."""
    out = reference_analyse(scores, clinic=clinic, config=config).reset_index(level=0)
    ev = out[out["event"]].copy()
    for col in (c.KIND, c.MAGNITUDE, c.THRESHOLD, c.RUPTURE_SESSION, c.FROM_SESSION, c.TO_SESSION):
        if col not in ev.columns:
            ev[col] = np.nan
    ev[c.SCALE] = pd.Categorical(ev[c.SCALE], dtype=c.SCALE_DTYPE)
    ev[c.KIND] = pd.Categorical(ev[c.KIND], dtype=c.KIND_DTYPE)
    ev = ev.sort_values([c.PATIENT, c.SESSION, c.SCALE, c.KIND], kind="stable")
    return ev[list(_KEYS)].reset_index(drop=True)
