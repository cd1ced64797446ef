"""``analyse``: scores in, levels, session deviations, flags and pattern labels out.

The pipeline: check and sort the input once; lay every (patient, scale) series out in output
order (patient, scale, session); estimate the clinic's reference values unless they are given;
run the prospective rules (:mod:`monitoring.analytics.engine`, compiled); then build each output
frame once from flat arrays. Nothing in Python loops over patients.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.clinic import (
    ClinicParameters,
    ScaleParameters,
    estimate_scale,
    noise_autocorrelation,
    robust_noise_sd,
    unit_noise_variance,
)
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.engine import (
    KIND_DECLINE,
    KIND_GAIN,
    KIND_LOSS,
    KIND_REPAIR,
    KIND_RUPTURE,
    KIND_UNREPAIRED,
    RULE_PREVIOUS,
    EngineResult,
    Layout,
    RuleOutputs,
    lay_out,
    run_rules,
    rupture_factors,
)
from monitoring.analytics.explain import explain_event_codes, explain_patterns
from monitoring.analytics.levels import (
    UnitStatistics,
    eb_interval,
    eb_level,
    eb_weight,
    unit_statistics,
    window_trend,
)
from monitoring.analytics.scoring import (
    AnalyticsInputError,
    _describe_rows,
    missing_patient_error,
    score_arrays,
)

_N_SCALES = len(c.SCALES)
#: robust_noise_sd's default trim: the one _unit_noise uses, so its value can be reused.
_DEFAULT_TRIM = inspect.signature(robust_noise_sd).parameters["trim"].default
_RULE_NAMES = np.array(
    [
        c.RULE_BASELINE,
        c.RULE_PREVIOUS,
        c.RULE_BACK_IN_RANGE,
        c.RULE_WINDOW_ENDED,
        c.RULE_CUSUM,
        c.RULE_TANG_DERUBEIS,
    ],
    dtype=object,
)


@dataclass(frozen=True)
class Analysis:
    """Result of :func:`analyse`. Frames use the names in :mod:`monitoring.analytics.columns`.

    - ``sessions``: one row per (patient, scale, completed session), ordered that way.
    - ``levels``: one row per (patient, scale) with at least one score.
    - ``events``: one row per flag, ordered by patient, session, scale and kind.
    - ``patterns``: one row per patient (pattern labels on ``config.pattern_scale``).
    - ``summary``: one row per scale (counts and rates for the clinic report).
    - ``clinic``: the reference values used (given, estimated, or priors).
    - ``config``: the configuration used.
    """

    sessions: pd.DataFrame
    levels: pd.DataFrame
    events: pd.DataFrame
    patterns: pd.DataFrame
    summary: pd.DataFrame
    clinic: ClinicParameters
    config: AnalysisConfig


@dataclass
class _Prepared:
    patients: pd.Index
    codes: np.ndarray
    session: np.ndarray
    values: np.ndarray  # (N, 5) in SCALES order; dropped once laid out


def _sorted_patients(uniques: pd.Index) -> np.ndarray:
    """Order of the unique patient ids: natural order, or by (type, repr) for mixed types."""
    try:
        return np.asarray(uniques.argsort(), dtype=np.int64)
    except TypeError:
        keys = [(type(u).__name__, repr(u)) for u in uniques]
        return np.asarray(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _prepare(scores: pd.DataFrame, config: AnalysisConfig) -> _Prepared:
    arrays = score_arrays(scores, scale_min=config.scale_min, scale_max=config.scale_max)
    codes0, uniques = pd.factorize(scores[c.PATIENT], sort=False)
    if codes0.size and codes0.min() < 0:
        raise missing_patient_error(scores, codes0 < 0)
    uniques = pd.Index(uniques)
    order_u = _sorted_patients(uniques)
    remap = np.empty(order_u.size, dtype=np.int64)
    remap[order_u] = np.arange(order_u.size)
    codes = remap[codes0]
    patients = uniques[order_u]
    session = arrays[c.SESSION].astype(np.int64)
    goal, task, bond = (arrays[name] for name in c.SUBSCALES)
    values = np.empty((codes.size, _N_SCALES))
    values[:, 0], values[:, 1], values[:, 2] = goal, task, bond
    if c.TOTAL in arrays:
        values[:, 3] = arrays[c.TOTAL]
    else:
        # Without item counts, a total needs all three subscales (methods.md section 1: a total
        # needs 10 of 12 items, and each subscale 3 of its 4; with one subscale missing, at most
        # 9 items can be behind it). The mean of the three equals the item mean of a full form.
        values[:, 3] = values[:, :3].mean(axis=1)
    np.add(goal, task, out=values[:, 4])
    values[:, 4] /= 2.0  # agreement: NaN unless both are present
    n = codes.size
    if n > 1:
        sorted_already = bool(
            np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (session[1:] > session[:-1])))
        )
        if not sorted_already:
            order = np.lexsort((session, codes))
            codes, session, values = codes[order], session[order], values[order]
        else:
            order = None
        dup = (codes[1:] == codes[:-1]) & (session[1:] == session[:-1])
        if dup.any():
            pos = np.flatnonzero(dup)
            pos = np.unique(np.concatenate([pos, pos + 1]))
            rows_pos = pos if order is None else order[pos]
            labels = list(scores.index[np.sort(rows_pos)])
            raise AnalyticsInputError(
                f"the same patient and session appear more than once; rows {_describe_rows(labels)}",
                rows=labels,
            )
    return _Prepared(patients=patients, codes=codes, session=session, values=values)


class _Noise(NamedTuple):
    """One scale's successive differences and what the clinic estimate takes from them."""

    diffs: np.ndarray  # between successive completed sessions of the same patient
    noise_sd: float  # robust_noise_sd(diffs) at its default trim
    unit_variance: np.ndarray
    unit_df: np.ndarray
    autocorrelation: float


def _unit_noise(codes: np.ndarray, values: np.ndarray, n_patients: int) -> list[_Noise]:
    """Per scale, the differences between successive completed sessions of the same patient
    (rows sorted by patient and session; NaN scores skipped), their robust SD, each patient's
    session-to-session variance and its df (:func:`monitoring.analytics.clinic.unit_noise_variance`),
    for the variance prior; and the lag-1 autocorrelation of the noise
    (:func:`monitoring.analytics.clinic.noise_autocorrelation`), for the calibration's steady
    patients. The differences are computed once per scale for all of these."""
    out = []
    for col in range(values.shape[1]):
        v = values[:, col]
        ok = ~np.isnan(v)
        vc, cc = v[ok], codes[ok]
        same = cc[1:] == cc[:-1]
        d = np.diff(vc)[same]
        who = cc[1:][same]
        # A jump into or out of a rupture is no session-to-session noise: differences beyond
        # four noise SDs of a difference (the clinic's robust estimate) are left out.
        noise_sd = robust_noise_sd(d)
        cutoff = 4.0 * np.sqrt(2.0) * noise_sd
        rho = noise_autocorrelation(d, who, cutoff)
        calm_d, calm_who = d, who
        if cutoff == cutoff:
            calm = np.abs(d) <= cutoff
            calm_d, calm_who = d[calm], who[calm]
        sums = np.bincount(calm_who, weights=calm_d * calm_d, minlength=n_patients)
        counts = np.bincount(calm_who, minlength=n_patients)
        out.append(_Noise(d, noise_sd, *unit_noise_variance(sums, counts), rho))
    return out


def _estimate_clinic(stats: UnitStatistics, noise: list[_Noise], config: AnalysisConfig) -> ClinicParameters:
    scale_idx = stats.units % _N_SCALES
    prior = config.prior()
    params: dict[str, ScaleParameters] = {}
    for i, name in enumerate(c.SCALES):
        sel = scale_idx == i
        params[name] = estimate_scale(
            n=stats.n[sel].astype(float),
            mean=stats.mean[sel],
            ss_within=stats.ss_within[sel],
            ceiling=stats.ceiling[sel],
            diffs=noise[i].diffs,
            trim=config.noise_trim,
            noise_sd=noise[i].noise_sd if config.noise_trim == _DEFAULT_TRIM else None,
            min_patients=config.min_patients,
            min_sessions=config.min_sessions,
            prior=prior,
            low_quantile=config.pattern_low_quantile,
            high_quantile=config.pattern_high_quantile,
            unit_variance=noise[i].unit_variance,
            unit_df=noise[i].unit_df,
            noise_ar=noise[i].autocorrelation,
        )
    n_patients = int(np.unique(stats.units // _N_SCALES).size)
    return ClinicParameters(scales=params, n_patients=n_patients)


def _scale_arrays(clinic: ClinicParameters, config: AnalysisConfig) -> dict[str, np.ndarray]:
    """Per-scale reference values as arrays indexed by scale position."""
    rows = []
    for name in c.SCALES:
        p = clinic.scales.get(name) or config.prior()
        sem = config.sem(name, p)
        prior_df, prior_var = p.variance_prior(default_df=config.prior_df_default, method=config.spread_floor)
        # The floor of the 1-2 session rule and of sudden changes: the clinic's typical
        # within-patient SD (the prior's) under the predictive rule, the pooled SD otherwise.
        pooled = np.sqrt(prior_var) if config.spread_rule == "predictive" else p.floor_sd(config.spread_floor)
        rows.append(
            (
                pooled,
                sem,
                1.96 * np.sqrt(2.0) * sem,
                p.clinic_mean,
                p.tau2,
                p.sigma2,
                p.level_q_low,
                p.level_q_high,
                prior_df,
                prior_var,
            )
        )
    a = np.array(rows, dtype=float)
    keys = (
        "pooled",
        "sem",
        "rc",
        "clinic_mean",
        "tau2",
        "sigma2",
        "q_low",
        "q_high",
        "prior_df",
        "prior_var",
    )
    return {key: a[:, i] for i, key in enumerate(keys)}


def analyse(scores: pd.DataFrame, config: AnalysisConfig | None = None) -> Analysis:
    """Analyse alliance scores: levels, deviations, prospective flags and pattern labels.

    ``scores`` has one row per patient-rated response: ``patient`` (any hashable id),
    ``session`` (whole number, increasing within a patient, gaps allowed), ``goal``, ``task``,
    ``bond`` (1-5 or NaN) and optionally ``total`` (otherwise the mean of the available
    subscales). ``agreement`` is the mean of goal and task when both are present.

    Row order does not matter. With ``config.clinic`` given, every flag at session t depends only
    on that patient's sessions up to t. Raises :class:`AnalyticsInputError` for unusable input.
    The rules and their references are in docs/methods.md.
    """
    config = config or AnalysisConfig()
    prep = _prepare(scores, config)
    noise = _unit_noise(prep.codes, prep.values, prep.patients.size) if config.clinic is None else []
    # The float columns of analysis.sessions are allocated once, here: the layout writes the
    # scores into their first row, unit_statistics uses the rows of level and state as scratch
    # space until their own values arrive, the rules write the baselines, spreads and CUSUMs into
    # theirs, and the frame is built on them without a copy. Fresh memory is the largest cost at
    # a million sessions (the kernel maps and zeroes every new page): few full-length arrays are
    # made that the result does not keep.
    n_obs = int(np.count_nonzero(~np.isnan(prep.values)))
    block = np.empty((len(_SESSION_FLOATS), n_obs))  # float columns of analysis.sessions
    sess_out = np.empty(n_obs, dtype=np.int64)
    layout, x_out, sess_out = lay_out(
        prep.codes, prep.values, prep.session, prep.patients.size, x_out=block[0], session_out=sess_out
    )
    del prep.values
    stats = unit_statistics(
        x_out,
        sess_out,
        n_unit=layout.n_unit,
        unit_start=layout.unit_start,
        detrend_min_sessions=config.detrend_min_sessions,
        scale_max=config.scale_max,
        work=block[1:3],
    )
    clinic = config.clinic if config.clinic is not None else _estimate_clinic(stats, noise, config)
    ref = _scale_arrays(clinic, config)
    result = run_rules(
        x_out,
        layout,
        pooled=ref["pooled"],
        sem=ref["sem"],
        rc=ref["rc"],
        config=config,
        prior_df=ref["prior_df"],
        prior_var=ref["prior_var"],
        out=RuleOutputs(
            baseline=block[_SESSION_FLOATS.index(c.BASELINE)],
            n_baseline=np.empty(n_obs, dtype=np.int32),
            s_used=block[_SESSION_FLOATS.index(c.S_USED)],
            cusum=block[_SESSION_FLOATS.index(c.CUSUM)],
            in_rupture=np.empty(n_obs, dtype=bool),
        ),
    )
    events = _events_frame(result, layout, x_out, sess_out, prep.patients, ref, config)
    sessions = _sessions_frame(result, layout, block, sess_out, stats, prep.patients, ref, config)
    levels = _levels_frame(stats, result, layout, events, prep.patients, ref, config)
    patterns = _patterns_frame(stats, layout, x_out, sess_out, events, result, prep.patients, ref, config)
    summary = _summary_frame(levels, events)
    return Analysis(
        sessions=sessions,
        levels=levels,
        events=events,
        patterns=patterns,
        summary=summary,
        clinic=clinic,
        config=config,
    )


def warm_up() -> None:
    """Analyse a small made-up cohort, once with estimated and once with given clinic values, so
    that this process has imported, loaded or compiled all an analysis needs (the rules' machine
    code, scipy's distributions, pandas' paths). A worker that forks a process per job (RQ) calls
    it before forking: without it every job paid about a second for these (docs/performance.md)."""
    rng = np.random.default_rng(0)
    n_patients, n_sessions = 12, 8
    base = rng.uniform(3.0, 4.5, size=(n_patients, 1)) + rng.normal(0.0, 0.3, size=(n_patients, n_sessions))
    scores = pd.DataFrame(
        {
            c.PATIENT: np.repeat(np.arange(n_patients), n_sessions),
            c.SESSION: np.tile(np.arange(1, n_sessions + 1), n_patients),
            **{name: np.clip(base, 1.0, 5.0).ravel() for name in c.SUBSCALES},
        }
    )
    estimated = analyse(scores)
    analyse(scores[scores[c.PATIENT] == 0], replace(estimated.config, clinic=estimated.clinic))


def _patient_column(codes: np.ndarray, patients: pd.Index) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=patients)


_SESSION_FLOATS = (c.SCORE, c.LEVEL, c.STATE, c.Z, c.BASELINE, c.S_USED, c.CUSUM)


def _sessions_frame(
    result: EngineResult,
    layout: Layout,
    block: np.ndarray,
    sess_out: np.ndarray,
    stats: UnitStatistics,
    patients: pd.Index,
    ref: dict[str, np.ndarray],
    config: AnalysisConfig,
) -> pd.DataFrame:
    """Build ``analysis.sessions``. ``block`` is the (7, N) float block of the frame: row 0 holds
    the scores, rows 4-6 the rules' baselines, spreads and CUSUMs (the rules wrote them there).
    The other float columns are written into rows 1-3 in place, and the frame is built on the
    rows and the other arrays without a copy (a DataFrame from a dict with ``copy=False`` keeps
    every array; ``insert`` would copy each full-length column, and each copy costs fresh memory
    pages)."""
    n = stats.n
    x_out, level, state, z = block[:4]
    unit_idx = np.repeat(np.arange(stats.units.size, dtype=np.intp), n)
    unit_scale = (stats.units % _N_SCALES).astype(np.int8)
    sem_unit = ref["sem"][unit_scale]
    if config.detrend:
        trend = ~np.isnan(stats.slope)
        denom_unit = np.fmax(np.where(trend, stats.residual_sd, stats.within_sd), sem_unit)
        np.take(np.where(trend, stats.slope, 0.0), unit_idx, out=level)
        level *= sess_out
        np.take(np.where(trend, stats.intercept, stats.mean), unit_idx, out=state)
        level += state
    else:
        denom_unit = np.fmax(stats.within_sd, sem_unit)
        np.take(stats.mean, unit_idx, out=level)
    np.subtract(x_out, level, out=state)
    np.take(denom_unit, unit_idx, out=z)
    np.divide(state, z, out=z)
    t_out = np.arange(1, x_out.size + 1, dtype=np.int32)
    t_out -= np.take(layout.unit_start[stats.units].astype(np.int32), unit_idx)
    patient = _patient_column(np.take((stats.units // _N_SCALES).astype(np.int32), unit_idx), patients)
    scale = pd.Categorical.from_codes(np.take(unit_scale, unit_idx), dtype=c.SCALE_DTYPE)
    del unit_idx
    floats = dict(zip(_SESSION_FLOATS, block, strict=True))
    columns = {
        c.PATIENT: patient,
        c.SESSION: sess_out,
        c.SCALE: scale,
        c.T: t_out,
        **floats,
        c.N_BASELINE: result.out.n_baseline,
        c.IN_RUPTURE: result.out.in_rupture,
    }
    return pd.DataFrame({name: columns[name] for name in c.SESSION_COLUMNS}, copy=False)


def _events_frame(
    result: EngineResult,
    layout: Layout,
    x_out: np.ndarray,
    sess_out: np.ndarray,
    patients: pd.Index,
    ref: dict[str, np.ndarray],
    config: AnalysisConfig,
) -> pd.DataFrame:
    ev = result.events
    t = ev["t"]
    unit = ev["unit"]
    pcode = unit // _N_SCALES
    scale = unit % _N_SCALES
    kind = ev["kind"]
    start = layout.unit_start[unit]  # an event's session is at start + t in output order
    order = np.lexsort((kind, scale, sess_out[start + t] if t.size else t, pcode))
    start, t, pcode, scale, kind = start[order], t[order], pcode[order], scale[order], kind[order]
    ev = {name: values[order] for name, values in ev.items()}
    idx = start + t
    session = sess_out[idx]
    score = x_out[idx]

    def session_at(pos: np.ndarray) -> np.ndarray:
        ok = pos >= 0
        out = np.full(pos.size, -1, dtype=np.int64)
        out[ok] = sess_out[start[ok] + pos[ok]]
        return out

    # OLS slope over the last `slope_window` sessions, for decline rows (quoted in the sentence).
    slope = np.full(t.size, np.nan)
    slope_n = np.zeros(t.size, dtype=np.int64)
    dec = np.flatnonzero(kind == KIND_DECLINE)
    if dec.size:
        w = config.slope_window
        n_pts = np.minimum(t[dec] + 1, w)
        pos = t[dec][:, None] - np.arange(w)[None, :]
        mask = np.arange(w)[None, :] < n_pts[:, None]
        pos = np.where(mask, pos, 0)
        flat_pos = start[dec][:, None] + pos
        xs = x_out[flat_pos]
        ss = sess_out[flat_pos].astype(float)
        cnt = n_pts.astype(float)
        mx = np.where(mask, xs, 0).sum(axis=1) / cnt
        ms = np.where(mask, ss, 0).sum(axis=1) / cnt
        dx = np.where(mask, xs - mx[:, None], 0)
        ds = np.where(mask, ss - ms[:, None], 0)
        sxx = (ds * ds).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope[dec] = np.where(sxx > 0, (ds * dx).sum(axis=1) / sxx, np.nan)
        slope_n[dec] = n_pts
    drop_repaired = ev["drop_repaired"] == 1
    rupture_session = session_at(ev["rupture_t"])
    from_session = session_at(ev["from_t"])
    to_session = session_at(ev["to_t"])
    previous = ev["rule"] == RULE_PREVIOUS
    explanation, sentences = explain_event_codes(
        kind=kind,
        scale=scale,
        rule_previous=previous,
        session=session,
        score=score,
        magnitude=ev["magnitude"],
        threshold=ev["threshold"],
        baseline=ev["baseline"],
        s_used=ev["s_used"],
        k=config.k_eff,
        rupture_session=rupture_session,
        sessions_since=t - ev["rupture_t"],
        from_session=from_session,
        to_session=to_session,
        mean_before=ev["mean_before"],
        mean_after=ev["mean_after"],
        slope=slope,
        slope_n=slope_n,
        drop_repaired=drop_repaired,
        tolerance=config.repair_tolerance,
        n_baseline=ev["n_baseline"],
    )
    k_col = np.where((kind == KIND_RUPTURE) & ~previous, config.k_eff, np.nan)
    k_col = np.where(np.isin(kind, (KIND_REPAIR, KIND_UNREPAIRED)) | previous, config.k_eff, k_col)
    alarm = _alarms(
        kind=kind,
        scale=scale,
        pcode=pcode,
        previous=previous,
        magnitude=ev["magnitude"],
        s_used=ev["s_used"],
        n_baseline=ev["n_baseline"],
        session=session,
        rupture_session=rupture_session,
        ref=ref,
        config=config,
    )

    n_base = ev["n_baseline"]

    return pd.DataFrame(
        {
            c.PATIENT: _patient_column(pcode.astype(np.int32), patients),
            c.SESSION: session,
            c.SCALE: pd.Categorical.from_codes(scale.astype(np.int8), dtype=c.SCALE_DTYPE),
            c.KIND: pd.Categorical.from_codes(kind.astype(np.int8), dtype=c.KIND_DTYPE),
            c.ALARM: alarm,
            c.MAGNITUDE: ev["magnitude"],
            c.THRESHOLD: ev["threshold"],
            c.EXPLANATION: _str_column(explanation, sentences),
            c.RULE: _str_column(ev["rule"], list(_RULE_NAMES)),
            c.T: (t + 1).astype(np.int32),
            c.SCORE: score,
            c.BASELINE: ev["baseline"],
            c.N_BASELINE: _nullable_int(np.where(np.isnan(n_base), -1, n_base).astype(np.int64)),
            c.S_USED: ev["s_used"],
            c.K: k_col,
            c.SEM: ref["sem"][scale],
            c.RC: ref["rc"][scale],
            c.POOLED_SD: ref["pooled"][scale],
            c.RUPTURE_SESSION: _nullable_int(rupture_session),
            c.FROM_SESSION: _nullable_int(from_session),
            c.TO_SESSION: _nullable_int(to_session),
            c.CUSUM: ev["cusum"],
            c.SLOPE: slope,
            c.MEAN_BEFORE: ev["mean_before"],
            c.MEAN_AFTER: ev["mean_after"],
            c.SD_WINDOW: ev["sd_window"],
            c.T_CRIT: ev["t_crit"],
        },
        copy=False,  # every array is this frame's own; no copy into consolidated blocks
    )


_TOTAL = c.SCALES.index(c.TOTAL)
_TASK = c.SCALES.index(c.TASK)


def _alarms(
    *,
    kind: np.ndarray,
    scale: np.ndarray,
    pcode: np.ndarray,
    previous: np.ndarray,
    magnitude: np.ndarray,
    s_used: np.ndarray,
    n_baseline: np.ndarray,
    session: np.ndarray,
    rupture_session: np.ndarray,
    ref: dict[str, np.ndarray],
    config: AnalysisConfig,
) -> np.ndarray:
    """Which events put the patient on the caseload: the unit of alarm is the patient-session.

    Every rupture, unrepaired rupture, decline and sudden loss on the total alliance; a decline
    of task agreement (the product's promise: Hoffart et al. found task agreement to move
    symptoms); and a rupture on goal, task, bond or agreement alone only when it passes the
    stricter ``subscale_alarm_k``. Other subscale events (an unrepaired subscale rupture
    included: the total's is the one that carries the risk) explain, and the patient page shows
    them all, but they do not raise attention by themselves.
    """
    alarm_kind = np.isin(kind, (KIND_RUPTURE, KIND_UNREPAIRED, KIND_DECLINE, KIND_LOSS))
    alarm = alarm_kind & (scale == _TOTAL)
    alarm |= (kind == KIND_DECLINE) & (scale == _TASK)
    # One alarm per event. A decline or a sudden loss within ``decline_continues`` sessions
    # after one of the patient's rupture or decline alarms continues that story (the drop went
    # on, or it shows again on another rule): recorded, explained, but no new alarm. Events at the
    # same session as that alarm are part of it and stay alarms. Unrepaired ruptures always
    # raise attention: that is the escalation the risk lies in.
    story = np.flatnonzero(alarm & np.isin(kind, (KIND_RUPTURE, KIND_DECLINE, KIND_LOSS)))
    if story.size > 1:
        order = np.lexsort((kind[story], session[story], pcode[story]))
        last_patient, last_alarm = -1, -(10**9)
        for i in story[order]:
            if pcode[i] != last_patient:
                last_patient, last_alarm = pcode[i], -(10**9)
            if session[i] == last_alarm:
                continue
            if kind[i] != KIND_RUPTURE and session[i] - last_alarm <= config.decline_continues:
                alarm[i] = False
            else:
                last_alarm = session[i]
    sub_rupture = np.flatnonzero((kind == KIND_RUPTURE) & (scale != _TOTAL))
    if sub_rupture.size:
        strict = replace(config, k=config.subscale_alarm_k)
        n = np.nan_to_num(n_baseline[sub_rupture], nan=0).astype(np.int64)
        factors = rupture_factors(strict, ref["prior_df"], int(n.max()) + 2)
        sc = scale[sub_rupture]
        bound = np.where(
            previous[sub_rupture],
            np.maximum(ref["rc"][sc], strict.k_eff * config.previous_sd_factor * ref["pooled"][sc]),
            factors[sc, n] * s_used[sub_rupture],
        )
        strong = magnitude[sub_rupture] >= bound - 1e-9
        alarm[sub_rupture[strong]] = True
    return alarm


def _str_column(codes: np.ndarray, strings: list[str]) -> pd.api.extensions.ExtensionArray:
    """The ``str`` column ``strings[codes]`` (missing where a code is -1).

    With pyarrow (pandas' storage of ``str`` when it is installed) the few distinct strings are
    converted once and taken by index, instead of converting one Python string per row."""
    if pd.StringDtype(na_value=np.nan).storage == "pyarrow" and codes.size and codes.min() >= 0:
        import pyarrow as pa

        return pd.array(pa.array(strings, type=pa.large_string()).take(pa.array(codes)), dtype="str")
    return pd.array(np.array([*strings, None], dtype=object)[codes], dtype="str")


def _nullable_int(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Int64 column with <NA> where ``values`` is negative (not applicable)."""
    return pd.arrays.IntegerArray(np.where(values >= 0, values, 0).astype(np.int64), values < 0)


def _unit_event_counts(events: pd.DataFrame, patients: pd.Index, units: np.ndarray) -> dict[str, np.ndarray]:
    n_units = patients.size * _N_SCALES
    unit = events[c.PATIENT].cat.codes.to_numpy(dtype=np.int64) * _N_SCALES + events[
        c.SCALE
    ].cat.codes.to_numpy(dtype=np.int64)
    kind = events[c.KIND].cat.codes.to_numpy()
    out = {}
    for name, code in (
        (c.N_RUPTURES, KIND_RUPTURE),
        (c.N_REPAIRS, KIND_REPAIR),
        (c.N_UNREPAIRED, KIND_UNREPAIRED),
        (c.N_DECLINES, KIND_DECLINE),
    ):
        out[name] = np.bincount(unit[kind == code], minlength=n_units)[units]
    return out


def _levels_frame(
    stats: UnitStatistics,
    result: EngineResult,
    layout: Layout,
    events: pd.DataFrame,
    patients: pd.Index,
    ref: dict[str, np.ndarray],
    config: AnalysisConfig,
) -> pd.DataFrame:
    scale = stats.units % _N_SCALES
    lam = eb_weight(n=stats.n.astype(float), tau2=ref["tau2"][scale], sigma2=ref["sigma2"][scale])
    counts = _unit_event_counts(events, patients, stats.units)
    open_rupture = result.open_rupture[stats.units]
    level_eb = eb_level(mean=stats.mean, lam=lam, clinic_mean=ref["clinic_mean"][scale])
    eb_low, eb_high = eb_interval(level_eb=level_eb, lam=lam, sigma2=ref["sigma2"][scale], n=stats.n)
    return pd.DataFrame(
        {
            c.PATIENT: _patient_column((stats.units // _N_SCALES).astype(np.int32), patients),
            c.SCALE: pd.Categorical.from_codes(scale.astype(np.int8), dtype=c.SCALE_DTYPE),
            c.N: stats.n,
            c.FIRST_SESSION: stats.first_session,
            c.LAST_SESSION: stats.last_session,
            c.LEVEL: stats.mean,
            c.LEVEL_EB: level_eb,
            c.LEVEL_EB_LOW: eb_low,
            c.LEVEL_EB_HIGH: eb_high,
            c.RELIABILITY: lam,
            c.PROVISIONAL: lam < config.provisional_lambda,
            c.WITHIN_SD: stats.within_sd,
            c.S_LEVEL: np.fmax(stats.within_sd, ref["sem"][scale]),
            c.SLOPE: stats.slope,
            c.DETRENDED_LEVEL: stats.detrended_level,
            c.RESIDUAL_SD: stats.residual_sd,
            c.CEILING: stats.ceiling,
            c.LAST_SCORE: stats.last_score,
            **counts,
            c.OPEN_RUPTURE: open_rupture,
            c.DECLINE_STATE: _decline_state(stats, layout, result.out.cusum, events, patients, config),
        },
        copy=False,  # every array is this frame's own; no copy into consolidated blocks
    )


def _decline_state(
    stats: UnitStatistics,
    layout: Layout,
    cusum_out: np.ndarray,
    events: pd.DataFrame,
    patients: pd.Index,
    config: AnalysisConfig,
) -> np.ndarray:
    """Where each unit stands after its latest decline: "declining" (the decline is the latest
    session, or the CUSUM has risen again since), "recovered" (back to within ``repair_tolerance``
    spreads of the level before the decline), "levelled_off" (steady at the lower level), or ""
    (no decline). A decline is raised once; this says what became of it."""
    out = np.full(stats.units.size, "", dtype=object)
    # Only the columns used: filtering the whole frame would copy every column of it.
    dec = events[[c.PATIENT, c.SCALE, c.T, c.BASELINE, c.S_USED]][events[c.KIND] == c.DECLINE]
    if dec.empty:
        return out
    unit = dec[c.PATIENT].cat.codes.to_numpy(dtype=np.int64) * _N_SCALES + dec[c.SCALE].cat.codes.to_numpy(
        dtype=np.int64
    )
    last = (
        pd.DataFrame(
            {
                "unit": unit,
                "t": dec[c.T].to_numpy(),
                "baseline": dec[c.BASELINE].to_numpy(),
                "s": dec[c.S_USED].to_numpy(),
            }
        )
        .groupby("unit")
        .last()
    )
    position = pd.Series(np.arange(stats.units.size), index=stats.units)
    idx = position.reindex(last.index).to_numpy()
    ok = ~np.isnan(idx)
    idx = idx[ok].astype(np.int64)
    last = last[ok]
    units = stats.units[idx]
    ends = layout.unit_start[units] + stats.n[idx] - 1
    last_cusum = cusum_out[ends]  # the CUSUM column of analysis.sessions (output order)
    recovered = (
        stats.last_score[idx]
        >= last["baseline"].to_numpy() - config.repair_tolerance * last["s"].to_numpy() - 1e-9
    )
    declining = (last["t"].to_numpy() == stats.n[idx]) | (np.nan_to_num(last_cusum) > config.decision_eff / 2)
    out[idx] = np.where(recovered, c.RECOVERED, np.where(declining, c.DECLINING, c.LEVELLED_OFF))
    return out


def _patterns_frame(
    stats: UnitStatistics,
    layout: Layout,
    x_out: np.ndarray,
    sess_out: np.ndarray,
    events: pd.DataFrame,
    result: EngineResult,
    patients: pd.Index,
    ref: dict[str, np.ndarray],
    config: AnalysisConfig,
) -> pd.DataFrame:
    """Pattern labels (Zilcha-Mano & Fisher 2022): low level + rising, high level + falling."""
    si = c.SCALES.index(config.pattern_scale)
    n_p = patients.size
    level = np.full(n_p, np.nan)
    n = np.zeros(n_p, dtype=np.int64)
    trend = np.full(n_p, np.nan)
    tval = np.full(n_p, np.nan)
    window_n = np.zeros(n_p, dtype=np.int64)
    open_r = np.zeros(n_p, dtype=bool)
    sel = np.flatnonzero(stats.units % _N_SCALES == si)
    if sel.size:
        units = stats.units[sel]
        pcode = units // _N_SCALES
        ends = layout.unit_start[units] + stats.n[sel]
        slope, tv, w = window_trend(
            x_out, sess_out, ends=ends, lengths=stats.n[sel], window=config.pattern_window
        )
        # The trait-like level the pattern compares is the level before the trend window (the
        # person mean when fewer than 3 sessions precede it): a rise or fall should not move
        # the level it is compared against.
        starts = layout.unit_start[units]
        before = stats.n[sel] - w
        # Sums of each unit's first `before` scores: reduceat over [start, start + before) pairs.
        bounds = np.column_stack([starts, starts + np.maximum(before, 1)]).reshape(-1)
        sums = np.add.reduceat(x_out, np.minimum(bounds, x_out.size - 1))[::2]
        with np.errstate(invalid="ignore", divide="ignore"):
            early = sums / before
        level[pcode] = np.where(before >= 3, early, stats.mean[sel])
        n[pcode] = stats.n[sel]
        trend[pcode] = slope
        tval[pcode] = tv
        window_n[pcode] = w
        open_r[pcode] = result.open_rupture[units]
        # An unrepaired rupture raised within the window counts as a rupture that is not repaired.
        unrep = events[[c.PATIENT, c.T]][
            (events[c.KIND] == c.UNREPAIRED) & (events[c.SCALE] == config.pattern_scale)
        ]
        if len(unrep):
            ecode = unrep[c.PATIENT].cat.codes.to_numpy(dtype=np.int64)
            et = unrep[c.T].to_numpy(dtype=np.int64)
            recent = et > n[ecode] - window_n[ecode]
            open_r[ecode[recent]] = True
    q_low, q_high = float(ref["q_low"][si]), float(ref["q_high"][si])
    enough = n >= config.pattern_min_sessions
    with np.errstate(invalid="ignore"):
        rising = (trend > 0) & (tval >= config.pattern_trend_t)
        falling = (trend < 0) & (tval <= -config.pattern_trend_t)
        corrective = enough & (level <= q_low) & rising
        crisis = enough & (level >= q_high) & (falling | open_r)
    pattern = np.where(corrective, c.CORRECTIVE_EXPERIENCE, np.where(crisis, c.CRISIS, c.NO_PATTERN)).astype(
        object
    )
    labels = np.array([c.PATTERN_LABELS[p] for p in c.PATTERN_LABELS], dtype=object)
    label_of = {p: labels[i] for i, p in enumerate(c.PATTERN_LABELS)}
    flagged = np.flatnonzero(pattern != c.NO_PATTERN)
    explanation = np.full(n_p, "", dtype=object)
    if flagged.size:
        explanation[flagged] = explain_patterns(
            pattern=list(pattern[flagged]),
            scale=config.pattern_scale,
            level=level[flagged],
            q_low=q_low,
            q_high=q_high,
            trend=np.where(falling[flagged] | rising[flagged], trend[flagged], np.nan),
            window_n=window_n[flagged],
            open_rupture=open_r[flagged],
        )
    return pd.DataFrame(
        {
            c.PATIENT: _patient_column(np.arange(n_p, dtype=np.int32), patients),
            c.PATTERN: pattern,
            c.LABEL: np.array([label_of[p] for p in pattern], dtype=object)
            if n_p
            else np.empty(0, dtype=object),
            c.EXPLANATION: pd.array(explanation, dtype="str"),
            c.SCALE: config.pattern_scale,
            c.N: n,
            c.LEVEL: level,
            c.QUANTILE_LOW: q_low,
            c.QUANTILE_HIGH: q_high,
            c.TREND: trend,
            c.OPEN_RUPTURE: open_r,
        }
    )


def _summary_frame(levels: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per-scale clinic figures: patients, sessions, flag counts, rates and ceiling share."""
    lv_scale = levels[c.SCALE].cat.codes.to_numpy()
    ev_scale = events[c.SCALE].cat.codes.to_numpy()
    ev_kind = events[c.KIND].cat.codes.to_numpy()
    ev_unit = events[c.PATIENT].cat.codes.to_numpy(dtype=np.int64) * _N_SCALES + ev_scale
    rows = []
    for i, name in enumerate(c.SCALES):
        lv = lv_scale == i
        counts = np.bincount(ev_kind[ev_scale == i], minlength=len(c.KINDS))
        ruptured = np.unique(ev_unit[(ev_scale == i) & (ev_kind == KIND_RUPTURE)]).size
        n_pat = int(lv.sum())
        resolved = counts[KIND_REPAIR] + counts[KIND_UNREPAIRED]
        rows.append(
            {
                c.SCALE: name,
                "n_patients": n_pat,
                "n_sessions": int(levels[c.N].to_numpy()[lv].sum()),
                "n_ruptures": int(counts[KIND_RUPTURE]),
                "n_repairs": int(counts[KIND_REPAIR]),
                "n_unrepaired": int(counts[KIND_UNREPAIRED]),
                "n_declines": int(counts[KIND_DECLINE]),
                "n_sudden_gains": int(counts[KIND_GAIN]),
                "n_sudden_losses": int(counts[KIND_LOSS]),
                "share_patients_with_rupture": ruptured / n_pat if n_pat else np.nan,
                "share_ruptures_repaired": counts[KIND_REPAIR] / resolved if resolved else np.nan,
                "ceiling_share": float(levels[c.CEILING].to_numpy()[lv].mean()) if n_pat else np.nan,
            }
        )
    return pd.DataFrame(rows)
