"""Simulated clinics with planted alliance events, item by item.

Used by the analytics tests, the simulation study in docs/methods.md, the benchmark and the demo
data seeder. Deterministic for a given seed. No Django import.

Generative model (all on the 1-5 answer scale):

- each patient has a trait level ``mu`` ~ N(3.95, 0.5), capped at 5 (clinic mean about 3.9-4.0,
  between-patient SD about 0.5, as in session-by-session WAI-SR data);
- each session adds a common state deviation ~ N(0, ``noise``) shared by the three subscales,
  plus a subscale-specific one ~ N(0, ``noise`` / 2) and fixed patient-specific subscale offsets
  ~ N(0, 0.15);
- each item adds a fixed patient-specific item offset ~ N(0, 0.15) and answer noise
  ~ N(0, ``item_noise``), then is rounded to a whole answer and clamped to 1-5 (``rounding``);
- scenarios add planted events to the latent scores (see :data:`SCENARIOS`); ceiling raters
  answer 5 to everything, some with an occasional stray 4.

With the defaults (``noise`` 0.15) a stable patient's total score has a within-patient SD of about
0.2 (the pooled within-patient SD of methods.md's known cases is 0.19) and a subscale score about
0.27, item rounding included; the clinic's ANOVA pooled within-patient SD, which also contains
growth, ruptures and declines, comes out near 0.35 for the total (sigma2 about 0.13; the EB example
of methods.md uses 0.09). docs/methods.md reports results for noise 0.1 to 0.3.
Therapist-rated parallel-form answers (``therapist_items``) follow the patient's latent course
with half its session-to-session movement, a level 0.3 lower and half the noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics.columns import PATIENT, SESSION
from monitoring.analytics.scoring import ITEM_PREFIX, WAI_SR_SUBSCALES, score_items_wide

SCENARIO = "scenario"

#: Scenario -> description of what is planted (the ``truth`` columns say where and how much).
SCENARIOS: Mapping[str, str] = MappingProxyType(
    {
        "stable": "trait level plus noise, nothing planted",
        "ceiling": "answers 5 to (nearly) every item",
        "growth": "alliance rises 0.02-0.05 points per session from 0.3 below the trait level",
        "rupture_repair": "drop of 1.0-1.5 points at `onset` for `duration` (1-2) sessions, then back "
        "(onset at least 3 sessions before the end)",
        "rupture_unrepaired": "drop of 1.0-1.5 points from `onset` to the end",
        "task_decline": "task falls 0.12-0.18 points per session after `onset` (goal 40% of that), "
        "for up to 8 sessions",
        "sudden_gain": "starts at 2.6-3.5 and jumps up 0.8-1.3 points at `onset`, stays up",
        "high_falling": "high level (4.3-4.7) falling 0.08-0.12 points per session after `onset`",
        "low_rising": "low level (2.4-3.1) rising 0.06-0.10 points per session throughout",
        "slow_decline": "every subscale falls 0.05 or 0.10 points per session after `onset`, to the end",
        "u_shape": "a gradual dip of 0.8 points over 8 sessions after `onset` (down 4, back up 4)",
    }
)

#: Default mix, meant to look like a clinic: mostly stable or growing, about 1 therapy in 2 with
#: a rupture (Eubanks, Muran & Safran 2018; McLaughlin et al. 2014 found 46%).
DEFAULT_SCENARIOS: Mapping[str, float] = MappingProxyType(
    {
        "stable": 0.25,
        "growth": 0.12,
        "ceiling": 0.08,
        "rupture_repair": 0.35,
        "rupture_unrepaired": 0.10,
        "task_decline": 0.05,
        "sudden_gain": 0.03,
        "high_falling": 0.01,
        "low_rising": 0.01,
    }
)

#: Fewest sessions a scenario needs for its event to be planted and observable; therapies drawn
#: shorter are lengthened to this.
MIN_SESSIONS: Mapping[str, int] = MappingProxyType(
    {
        "stable": 1,
        "ceiling": 1,
        "growth": 1,
        "rupture_repair": 8,
        "rupture_unrepaired": 8,
        "task_decline": 11,
        "sudden_gain": 8,
        "high_falling": 11,
        "low_rising": 8,
        "slow_decline": 14,
        "u_shape": 14,
    }
)

#: Session-to-session variance of a stable patient's total without any state noise: the
#: subscale, item and rounding noise of the defaults (measured on 1,500 stable patients).
_BASE_TOTAL_VARIANCE = 0.0166

ITEM_COLUMNS = tuple(f"{ITEM_PREFIX}{i}" for i in range(1, 13))
_SUBSCALE_OF_ITEM = np.empty(12, dtype=np.int64)
for _s, (_name, _items) in enumerate(WAI_SR_SUBSCALES.items()):
    for _i in _items:
        _SUBSCALE_OF_ITEM[_i - 1] = _s
_TASK = list(WAI_SR_SUBSCALES).index("task")
_GOAL = list(WAI_SR_SUBSCALES).index("goal")


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated clinic.

    - ``items``: one row per patient session: ``patient`` ("P001"...), ``session`` (1..n),
      ``scenario``, ``item_1`` .. ``item_12`` (whole answers 1-5, WAI-SR item order).
    - ``therapist_items``: the therapist-rated parallel form for the same sessions, same columns.
    - ``truth``: one row per patient: ``patient``, ``scenario``, ``n_sessions``, ``trait`` (latent
      level), ``ceiling``, ``onset`` (session of the planted event: first low session of a
      rupture, last session before a decline or fall, first session after a sudden gain),
      ``duration`` (sessions of a repaired rupture), ``magnitude`` (points; points per session
      for trends) and ``affected`` ("all" or "task").
    - ``scores``: ``items`` scored (goal, task, bond, total), ready for ``analyse``.
    """

    items: pd.DataFrame
    therapist_items: pd.DataFrame
    truth: pd.DataFrame
    scores: pd.DataFrame


def _patient_ids(n: int) -> np.ndarray:
    width = max(3, len(str(n)))
    return np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _uniform_int(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integers uniform on [low, high] elementwise (high >= low)."""
    return low + np.floor(rng.random(low.shape) * (high - low + 1)).astype(np.int64)


def _answers(latent: np.ndarray, rounding: bool) -> np.ndarray:
    values = np.clip(np.rint(latent) if rounding else latent, 1, 5)
    return values.astype(np.int8) if rounding else values


def simulate_cohort(
    n_patients: int,
    *,
    seed: int,
    sessions: tuple[int, int] = (6, 30),
    scenarios: Mapping[str, float] | None = None,
    noise: float | tuple[float, float] = 0.15,
    item_noise: float = 0.35,
    rounding: bool = True,
    clinic_mean: float = 3.95,
    between_sd: float = 0.5,
    ar: float = 0.0,
    missing_sessions: float = 0.0,
    missing_items: float = 0.0,
    session_sd: tuple[float, float] | None = None,
) -> SimulatedCohort:
    """Simulate ``n_patients`` therapies with planted events.

    ``sessions`` is the (min, max) number of sessions, drawn uniformly (event scenarios are
    lengthened to :data:`MIN_SESSIONS`); ``scenarios`` maps scenario names to weights
    (default :data:`DEFAULT_SCENARIOS`; e.g. ``{"stable": 1}`` for a stable clinic); ``noise``
    is the SD of the common session-to-session state (a ``(low, high)`` pair draws one per
    patient, log-uniform), ``item_noise`` of one answer; ``rounding=False`` keeps answers
    continuous (for studying the effect of rounding). ``ar`` makes the state AR(1) within a
    patient (same variance); ``missing_sessions`` drops that share of sessions (never the first,
    nor one of a planted event's sessions: gaps in the numbering), ``missing_items`` blanks that
    share of answers (at most two per session). ``session_sd`` = (low, high) instead draws each
    patient's session-to-session SD *of the total score* log-uniformly and sets its state noise
    to give it (the total's SD also holds the subscale, item and rounding noise: measured on
    stable patients, ``SD^2 = 0.0166 + 0.96 * noise^2``, so an SD below 0.13 is not reachable and
    gets the least noise). The extra options draw from their own random streams, so the defaults
    give exactly the cohorts they always gave.
    """
    mix = dict(DEFAULT_SCENARIOS if scenarios is None else scenarios)
    unknown = set(mix) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s) {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    lo, hi = sessions
    if not 1 <= lo <= hi:
        raise ValueError("sessions must be (min, max) with 1 <= min <= max")
    rng = np.random.default_rng(seed)
    names = np.array(list(mix), dtype=object)
    weights = np.array([mix[name] for name in names], dtype=float)
    scenario = names[rng.choice(names.size, size=n_patients, p=weights / weights.sum())]
    n_sess = rng.integers(lo, hi + 1, size=n_patients)
    need = np.array([MIN_SESSIONS[s] for s in scenario], dtype=np.int64)
    n_sess = np.maximum(n_sess, need)
    mu = np.minimum(rng.normal(clinic_mean, between_sd, n_patients), 5.0)

    def is_(name: str) -> np.ndarray:
        return scenario == name

    onset = np.full(n_patients, -1, dtype=np.int64)
    duration = np.full(n_patients, -1, dtype=np.int64)
    magnitude = np.full(n_patients, np.nan)
    affected = np.full(n_patients, "", dtype=object)
    u = rng.random((n_patients, 4))  # scenario draws, one stream for all scenarios

    sel = is_("rupture_repair")
    duration[sel] = 1 + (u[sel, 0] < 0.5)
    # The drop starts at least 3 sessions before the end, so its repair window is observed.
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 3)
    magnitude[sel] = 1.0 + 0.5 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("rupture_unrepaired")
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 3)
    magnitude[sel] = 1.0 + 0.5 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("task_decline")
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 6)
    magnitude[sel] = 0.12 + 0.06 * u[sel, 1]
    affected[sel] = "task"
    sel = is_("growth")
    mu[sel] = np.minimum(mu[sel], 4.6) - 0.3
    magnitude[sel] = 0.02 + 0.03 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("sudden_gain")
    mu[sel] = 2.6 + 0.9 * u[sel, 2]
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 2)
    magnitude[sel] = 0.8 + 0.5 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("high_falling")
    mu[sel] = 4.3 + 0.4 * u[sel, 2]
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 6)
    magnitude[sel] = 0.08 + 0.04 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("low_rising")
    mu[sel] = 2.4 + 0.7 * u[sel, 2]
    magnitude[sel] = 0.06 + 0.04 * u[sel, 1]
    affected[sel] = "all"
    sel = is_("slow_decline")
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 10)
    magnitude[sel] = np.where(u[sel, 1] < 0.5, 0.05, 0.10)
    affected[sel] = "all"
    sel = is_("u_shape")
    onset[sel] = _uniform_int(rng, np.full(sel.sum(), 4), n_sess[sel] - 9)
    magnitude[sel] = 0.8
    affected[sel] = "all"
    ceiling = is_("ceiling")
    mu[ceiling] = 5.0
    stray = np.where(ceiling, np.array([0.0, 0.0, 0.01, 0.03])[rng.integers(0, 4, n_patients)], 0.0)

    # One row per session.
    n_rows = int(n_sess.sum())
    pid = np.repeat(np.arange(n_patients), n_sess)
    starts = np.concatenate(([0], np.cumsum(n_sess)[:-1]))
    session = np.arange(n_rows) - np.repeat(starts, n_sess) + 1
    scn = scenario[pid]
    on = onset[pid]
    mag = magnitude[pid]
    common = np.zeros(n_rows)
    task_eff = np.zeros(n_rows)
    r = scn == "rupture_repair"
    common[r] -= np.where((session[r] >= on[r]) & (session[r] < on[r] + duration[pid][r]), mag[r], 0.0)
    r = scn == "rupture_unrepaired"
    common[r] -= np.where(session[r] >= on[r], mag[r], 0.0)
    r = scn == "task_decline"
    task_eff[r] = -mag[r] * np.clip(session[r] - on[r], 0, 8)
    r = scn == "growth"
    common[r] += mag[r] * (session[r] - 1)
    r = scn == "sudden_gain"
    common[r] += np.where(session[r] >= on[r], mag[r], 0.0)
    r = scn == "high_falling"
    common[r] -= mag[r] * np.clip(session[r] - on[r], 0, None)
    r = scn == "low_rising"
    common[r] += mag[r] * (session[r] - 1)
    r = scn == "slow_decline"
    common[r] -= mag[r] * np.clip(session[r] - on[r], 0, None)
    r = scn == "u_shape"
    common[r] -= mag[r] * np.clip(4 - np.abs(session[r] - on[r] - 4), 0, None) / 4.0

    extra = np.random.default_rng([seed, 1])  # the options' own stream
    if session_sd is not None:
        target = np.exp(extra.uniform(np.log(session_sd[0]), np.log(session_sd[1]), n_patients))
        patient_noise = np.sqrt(np.maximum(target * target - _BASE_TOTAL_VARIANCE, 0.0004) / 0.96)
        row_noise: float | np.ndarray = patient_noise[pid]
        noise = float(np.median(patient_noise))
    elif isinstance(noise, tuple):
        low, high = noise
        patient_noise = np.exp(extra.uniform(np.log(low), np.log(high), n_patients))
        row_noise = patient_noise[pid]
        noise = float(np.exp(np.mean(np.log(noise))))
    else:
        row_noise = noise
    state = rng.normal(0.0, row_noise, n_rows)
    if ar:
        # AR(1) with the same stationary variance: s_t = ar s_{t-1} + sqrt(1 - ar^2) e_t.
        first = session == 1
        scale = np.sqrt(1.0 - ar * ar)
        for i in np.flatnonzero(~first):  # sessions are consecutive rows of each patient
            state[i] = ar * state[i - 1] + scale * state[i]
    delta = rng.normal(0.0, 0.15, (n_patients, 3))
    sub_noise = rng.normal(0.0, noise / 2, (n_rows, 3))
    sub = (mu[pid] + common + state)[:, None] + delta[pid] + sub_noise
    sub[:, _TASK] += task_eff
    sub[:, _GOAL] += 0.4 * task_eff
    item_offset = rng.normal(0.0, 0.15, (n_patients, 12))
    latent = sub[:, _SUBSCALE_OF_ITEM] + item_offset[pid] + rng.normal(0.0, item_noise, (n_rows, 12))
    answers = _answers(latent, rounding)
    cei = ceiling[pid]
    if cei.any():
        strays = rng.random((int(cei.sum()), 12)) < stray[pid][cei][:, None]
        answers[cei] = np.where(strays, 4, 5).astype(answers.dtype)

    # Therapist form: same course, half the movement, a bit lower, less noise.
    th_level = np.where(ceiling, 4.6, mu) - 0.3
    th_common = th_level[pid] + 0.5 * (common + state) + rng.normal(0.0, noise / 2, n_rows)
    th_sub = th_common[:, None] + 0.5 * delta[pid]
    th_sub[:, _TASK] += 0.5 * task_eff
    th_latent = th_sub[:, _SUBSCALE_OF_ITEM] + rng.normal(0.0, item_noise / 2, (n_rows, 12))
    th_answers = _answers(th_latent, rounding)

    ids = _patient_ids(n_patients)
    frame_ids = pd.Categorical.from_codes(pid, categories=pd.Index(ids, dtype=object))
    base = {PATIENT: np.asarray(frame_ids), SESSION: session, SCENARIO: scn}
    items = pd.DataFrame({**base, **dict(zip(ITEM_COLUMNS, answers.T, strict=True))})
    therapist = pd.DataFrame({**base, **dict(zip(ITEM_COLUMNS, th_answers.T, strict=True))})
    truth = pd.DataFrame(
        {
            PATIENT: ids,
            SCENARIO: scenario,
            "n_sessions": n_sess,
            "trait": mu,
            "ceiling": ceiling,
            "onset": pd.arrays.IntegerArray(np.maximum(onset, 0), onset < 0),
            "duration": pd.arrays.IntegerArray(np.maximum(duration, 0), duration < 0),
            "magnitude": magnitude,
            "affected": affected,
        }
    )
    if missing_sessions or missing_items:
        items, therapist, truth = _missing(
            items, therapist, truth, extra, sessions_share=missing_sessions, items_share=missing_items
        )
    scores = score_items_wide(items)
    return SimulatedCohort(items=items, therapist_items=therapist, truth=truth, scores=scores)


def _missing(
    items: pd.DataFrame,
    therapist: pd.DataFrame,
    truth: pd.DataFrame,
    rng: np.random.Generator,
    *,
    sessions_share: float,
    items_share: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Missed sessions (rows dropped, leaving gaps in the numbering) and missing answers."""
    info = truth.set_index(PATIENT)
    onset = info["onset"].astype("float").reindex(items[PATIENT].astype(object)).to_numpy()
    duration = info["duration"].astype("float").fillna(1).reindex(items[PATIENT].astype(object)).to_numpy()
    session = items[SESSION].to_numpy()
    protected = (session == 1) | ((session >= onset - 1) & (session <= onset + np.maximum(duration, 1) + 1))
    keep = ~((rng.random(len(items)) < sessions_share) & ~protected)
    items, therapist = items[keep].reset_index(drop=True), therapist[keep].reset_index(drop=True)
    if items_share:
        answers = items[list(ITEM_COLUMNS)].to_numpy(dtype=float, copy=True)
        blank = rng.random(answers.shape) < items_share
        # At most two per session: keep the first two blanks of a row.
        blank &= np.cumsum(blank, axis=1) <= 2
        answers[blank] = np.nan
        items = items.assign(**dict(zip(ITEM_COLUMNS, answers.T, strict=True)))
    counts = items.groupby(items[PATIENT].astype(object), sort=False).size()
    truth = truth.assign(n_sessions=truth[PATIENT].map(counts).fillna(0).astype(np.int64))
    return items, therapist, truth
