"""Outcome measures beside the alliance: scoring, NHS Talking Therapies outcomes, not-on-track,
and the within-patient alliance-outcome link.

Pure numpy/pandas/scipy (no Django). Public API (kept stable for researchers)::

    from monitoring.analytics import alliance_outcome, episode_outcomes

- :data:`MEASURES`: PHQ-9 and GAD-7 as data (items, range, bands, cut-off, reliable change,
  LOINC codes), the same values as their instrument files in ``monitoring/instruments/``.
- :func:`episode_outcomes`: per patient the first and last score of each measure and the NHS
  Talking Therapies definitions (caseness, recovery, reliable improvement / deterioration /
  recovery).
- :func:`alliance_outcome`: does a session whose alliance is above the patient's own usual level
  come before fewer symptoms at the next session? A random-intercept model fitted by REML with
  person-mean centring (Falkenström et al.; Hoffart 2014, seed 000; Zilcha-Mano & Fisher 2022,
  Box 2), separating the within-patient from the between-patient association.
- :func:`expected_recovery` and :func:`not_on_track`: OQ-Analyst-style expected-recovery curves by
  intake severity (Lambert et al.), from a clinic's finished episodes, and the signal when a
  patient's score is worse than the expected band for their session.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c


@dataclass(frozen=True)
class MeasureSpec:
    """An outcome measure's scoring, as data.

    ``bands`` are (lowest score, label) in increasing order; ``cutoff`` is the caseness threshold
    (a score at or above it is a case); ``reliable_change`` the smallest change in points that
    counts as reliable (NHS Talking Therapies); ``max_missing`` how many unanswered items a
    total may have (prorated: mean of the answered items times the number of items, rounded);
    higher is worse for both measures bundled.
    """

    code: str
    name: str
    items: int
    item_min: int
    item_max: int
    bands: tuple[tuple[int, str], ...]
    cutoff: int
    reliable_change: int
    max_missing: int
    loinc_panel: str
    loinc_total: str
    higher_is_worse: bool = True
    risk_item: int | None = None

    @property
    def max_score(self) -> int:
        return self.items * self.item_max

    def band(self, score: float) -> str:
        """The severity band of a total score ("" when missing)."""
        if score != score:
            return ""
        label = self.bands[0][1]
        for lowest, name in self.bands:
            if score >= lowest:
                label = name
        return label


PHQ9 = MeasureSpec(
    code="phq9",
    name="PHQ-9",
    items=9,
    item_min=0,
    item_max=3,
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe")),
    cutoff=10,
    reliable_change=6,
    max_missing=1,
    loinc_panel="44249-1",
    loinc_total="44261-6",
    risk_item=9,
)
GAD7 = MeasureSpec(
    code="gad7",
    name="GAD-7",
    items=7,
    item_min=0,
    item_max=3,
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
    cutoff=8,
    reliable_change=4,
    max_missing=1,
    loinc_panel="69737-5",
    loinc_total="70274-6",
)
MEASURES: Mapping[str, MeasureSpec] = MappingProxyType({PHQ9.code: PHQ9, GAD7.code: GAD7})


def score_measure(answers: Sequence[float | None], spec: MeasureSpec) -> float:
    """The total of one completed form: the sum of its items; with up to ``spec.max_missing``
    items unanswered, the mean of the answered ones times the number of items (rounded to a whole
    point); NaN otherwise. Raises ValueError for an answer off the item range."""
    values = [float(v) for v in answers if v is not None and v == v]
    if len(answers) != spec.items:
        raise ValueError(f"{spec.name} has {spec.items} items, not {len(answers)}")
    for v in values:
        if not spec.item_min <= v <= spec.item_max or v != int(v):
            raise ValueError(
                f"{spec.name} answers are whole numbers {spec.item_min}-{spec.item_max}, not {v:g}"
            )
    missing = spec.items - len(values)
    if missing > spec.max_missing or not values:
        return float("nan")
    total = sum(values)
    return float(total) if missing == 0 else float(round(total / len(values) * spec.items))


def reliable_change_index(*, sd: float, reliability: float) -> float:
    """Jacobson & Truax (1991): the change that is reliable at 95%, ``1.96 * sqrt(2) * SEM`` with
    ``SEM = sd * sqrt(1 - reliability)``, for measures loaded with a norm SD and a reliability."""
    return 1.96 * math.sqrt(2.0) * sd * math.sqrt(1.0 - reliability)


# --- Per-episode outcomes (NHS Talking Therapies) -------------------------------------------------

MEASURE = "measure"
OUTCOME_COLUMNS = (
    "caseness_start",
    "recovery",
    "reliable_improvement",
    "reliable_deterioration",
    "reliable_recovery",
)


def episode_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: for each measure its first and last score (``phq9_first``,
    ``phq9_last``, ``gad7_first``, ...), and the NHS Talking Therapies outcomes.

    ``outcomes`` has ``patient``, ``session``, ``measure`` ("phq9" or "gad7") and ``score``
    (missing scores are skipped). Definitions (first and last score of each measure):

    - ``caseness_start``: PHQ-9 >= 10 or GAD-7 >= 8 at the first score;
    - ``recovery``: a case at the start and neither measure at caseness at the end (empty, NA,
      when not a case at the start);
    - ``reliable_improvement``: a reliable decrease (6+ points on PHQ-9, 4+ on GAD-7) on at least
      one measure and no reliable increase on the other; ``reliable_deterioration`` the mirror
      image;
    - ``reliable_recovery``: recovery and reliable improvement (NA when not a case at the start).

    A patient with only one measure is judged on it alone. Booleans are pandas' nullable boolean.
    """
    data = outcomes.dropna(subset=["score"])
    unknown = set(data[MEASURE]) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measure(s) {sorted(unknown)}; known: {sorted(MEASURES)}")
    data = data.sort_values([c.PATIENT, MEASURE, c.SESSION])
    grouped = data.groupby([c.PATIENT, MEASURE], sort=True)["score"]
    first = grouped.first().unstack(MEASURE)
    last = grouped.last().unstack(MEASURE)
    patients = first.index
    out = pd.DataFrame(index=patients)
    case = pd.Series(False, index=patients)
    still = pd.Series(False, index=patients)
    down = pd.Series(False, index=patients)
    up = pd.Series(False, index=patients)
    for code, spec in MEASURES.items():
        f = first[code] if code in first else pd.Series(np.nan, index=patients)
        l_ = last[code] if code in last else pd.Series(np.nan, index=patients)
        out[f"{code}_first"] = f
        out[f"{code}_last"] = l_
        case |= f >= spec.cutoff
        still |= l_ >= spec.cutoff
        change = l_ - f
        down |= change <= -spec.reliable_change
        up |= change >= spec.reliable_change
    improvement = down & ~up
    deterioration = up & ~down
    recovery = case & ~still
    out["caseness_start"] = case.astype("boolean")
    out["recovery"] = recovery.astype("boolean").where(case, pd.NA)
    out["reliable_improvement"] = improvement.astype("boolean")
    out["reliable_deterioration"] = deterioration.astype("boolean")
    out["reliable_recovery"] = (recovery & improvement).astype("boolean").where(case, pd.NA)
    return out.reset_index().rename(columns={"index": c.PATIENT})


# --- The within-patient alliance-outcome link ---------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A coefficient with its standard error and 95% Wald interval."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class AllianceOutcome:
    """Result of :func:`alliance_outcome`. ``within``: the next-session score per point of
    alliance above the patient's own mean; ``between``: per point of a patient's mean alliance
    above the mean of the patients' means; ``lagged``: the coefficient of the current score;
    ``tau2`` and ``sigma2`` the random-intercept and residual variances (REML)."""

    within: Estimate
    between: Estimate
    lagged: Estimate
    intercept: Estimate
    n_patients: int
    n_observations: int
    scale: str
    lag: int
    tau2: float
    sigma2: float


def _estimate(value: float, se: float) -> Estimate:
    return Estimate(estimate=value, se=se, ci_low=value - 1.959964 * se, ci_high=value + 1.959964 * se)


def _reml(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """REML fit of ``y = X b + u_group + e`` (random intercept): (b, cov(b), tau2, sigma2).

    With ``psi = tau2 / sigma2`` each group's covariance is ``sigma2 (I + psi J)``, whose inverse
    is ``(I - c J) / sigma2`` with ``c = psi / (1 + n psi)``, so the GLS solution needs only group
    sums. The REML log likelihood is profiled over sigma2 and maximised over log psi.
    """
    from scipy.optimize import minimize_scalar

    codes, counts = np.unique(groups, return_inverse=False, return_counts=True)
    inverse = np.unique(groups, return_inverse=True)[1]
    n_obs, p = x.shape
    sum_x = np.zeros((codes.size, p))
    np.add.at(sum_x, inverse, x)
    sum_y = np.bincount(inverse, weights=y, minlength=codes.size)
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)

    def parts(psi: float) -> tuple[np.ndarray, np.ndarray, float, float]:
        cw = psi / (1.0 + counts * psi)
        a = xtx - (sum_x * cw[:, None]).T @ sum_x
        b_ = xty - (sum_x * cw[:, None]).T @ sum_y
        beta = np.linalg.solve(a, b_)
        rss = yty - float(np.sum(cw * sum_y * sum_y)) - float(beta @ b_)
        return beta, a, rss, float(np.sum(np.log1p(counts * psi)))

    def negloglik(log_psi: float) -> float:
        psi = math.exp(log_psi)
        _, a, rss, logdet_v = parts(psi)
        sigma2 = rss / (n_obs - p)
        _sign, logdet_a = np.linalg.slogdet(a)
        return 0.5 * ((n_obs - p) * math.log(sigma2) + logdet_v + logdet_a)

    best = minimize_scalar(negloglik, bounds=(-12.0, 8.0), method="bounded", options={"xatol": 1e-8})
    psi = math.exp(best.x)
    if negloglik(-30.0) <= best.fun:  # the boundary: no between-patient variance
        psi = 0.0
    beta, a, rss, _ = parts(psi)
    sigma2 = rss / (n_obs - p)
    return beta, sigma2 * np.linalg.inv(a), psi * sigma2, sigma2


def alliance_outcome(
    alliance: pd.DataFrame, outcomes: pd.DataFrame, lag: int = 1, scale: str = c.TOTAL
) -> AllianceOutcome:
    """Does a better-than-usual alliance come before fewer symptoms ``lag`` sessions later?

    ``alliance`` has ``patient``, ``session``, ``goal``, ``task``, ``bond`` (as
    :func:`monitoring.analytics.analyse` takes; ``total`` is their mean, ``agreement`` the mean of
    goal and task); ``outcomes`` has ``patient``, ``session``, ``score`` (one measure, higher is
    worse). The model, fitted by REML with a random intercept per patient:

        score[t + lag] = b0 + b1 * score[t] + b_within * (alliance[t] - patient mean alliance)
                         + b_between * (patient mean alliance - mean of the patients' means) + u + e

    The patient mean is over all the patient's sessions with an alliance score (person-mean
    centring: the within coefficient is purely within-patient, the between one purely between;
    Hoffart et al.'s exercise and heart-attack example is why they must be kept apart). Rows need
    the alliance and the score at t and the score at t + lag (session numbers, so a missed session
    leaves its pair out). Returns an :class:`AllianceOutcome`; ``within`` and ``between`` each with
    ``estimate``, ``se``, ``ci_low``, ``ci_high``.
    """
    if scale not in c.SCALES:
        raise ValueError(f"scale must be one of {c.SCALES}")
    if lag < 1:
        raise ValueError("lag must be 1 or more")
    a = alliance[[c.PATIENT, c.SESSION, c.GOAL, c.TASK, c.BOND]].copy()
    a[c.TOTAL] = a[[c.GOAL, c.TASK, c.BOND]].mean(axis=1, skipna=False)
    a[c.AGREEMENT] = a[[c.GOAL, c.TASK]].mean(axis=1, skipna=False)
    a = a[[c.PATIENT, c.SESSION, scale]].dropna().rename(columns={scale: "alliance"})
    means = a.groupby(c.PATIENT)["alliance"].mean()
    a["within"] = a["alliance"] - a[c.PATIENT].map(means)
    a["between"] = a[c.PATIENT].map(means) - means.mean()
    o = outcomes[[c.PATIENT, c.SESSION, "score"]].dropna()
    later = o.assign(**{c.SESSION: o[c.SESSION] - lag}).rename(columns={"score": "next_score"})
    rows = a.merge(o, on=[c.PATIENT, c.SESSION]).merge(later, on=[c.PATIENT, c.SESSION]).dropna()
    if rows[c.PATIENT].nunique() < 2 or len(rows) < 6:
        raise ValueError("too few patients or sessions with alliance and both scores to fit the model")
    x = np.column_stack([np.ones(len(rows)), rows["score"], rows["within"], rows["between"]]).astype(float)
    beta, cov, tau2, sigma2 = _reml(
        rows["next_score"].to_numpy(float), x, rows[c.PATIENT].astype(str).to_numpy()
    )
    se = np.sqrt(np.diag(cov))
    return AllianceOutcome(
        intercept=_estimate(float(beta[0]), float(se[0])),
        lagged=_estimate(float(beta[1]), float(se[1])),
        within=_estimate(float(beta[2]), float(se[2])),
        between=_estimate(float(beta[3]), float(se[3])),
        n_patients=int(rows[c.PATIENT].nunique()),
        n_observations=len(rows),
        scale=scale,
        lag=lag,
        tau2=tau2,
        sigma2=sigma2,
    )


# --- Expected recovery and not on track ----------------------------------------------------------

#: The published-norm fallback, used for a band until the clinic has ``MIN_EPISODES`` finished
#: episodes in it: the score falls log-linearly to ``FALLBACK_PROPORTION_AT_8`` of intake by the
#: 8th session, slowly on to the 12th, then level. The course approximates the average one reported by NHS
#: Talking Therapies services (mean PHQ-9 and GAD-7 falling by about 40% over a typical course of
#: 6-8 sessions, about half of cases recovering); it is a coarse stand-in for the clinic's own
#: curves, not a norm fitted to individual trajectories (docs/methods.md section 6.4).
FALLBACK_PROPORTION_AT_8 = 0.6
#: ... and levels off after this session, at about half of intake (0.52): long therapies do not
#: keep improving along the early curve.
FALLBACK_LEVEL_OFF = 12
#: The band above the fallback course: ``FALLBACK_BAND_FACTOR`` times the measure's reliable
#: change (PHQ-9 8 points, GAD-7 5.3). Chosen on simulated patients on the expected course so that
#: they are flagged in at most about 1 session in 100 (the alliance flags' budget); with the
#: reliable change itself (6 points) it was 1 in 27 (docs/methods.md section 6.4).
FALLBACK_BAND_FACTOR = 4.0 / 3.0
MIN_EPISODES = 30


@dataclass(frozen=True)
class RecoveryCurves:
    """Expected score by session for each intake band of a measure, with an upper band.

    ``expected[band]`` and ``upper[band]`` are arrays indexed by the session's position in the
    episode (1 = intake; index 0 unused); ``source[band]`` is "clinic" (fitted on the clinic's
    finished episodes, ``episodes[band]`` of them) or "published" (the fallback curve)."""

    measure: str
    expected: Mapping[str, np.ndarray]
    upper: Mapping[str, np.ndarray]
    source: Mapping[str, str]
    episodes: Mapping[str, int]

    @property
    def from_clinic(self) -> bool:
        return any(value == "clinic" for value in self.source.values())


def expected_recovery(
    finished: pd.DataFrame,
    spec: MeasureSpec,
    *,
    sessions: int = 30,
    quantile: float = 0.9,
    min_episodes: int = MIN_EPISODES,
) -> RecoveryCurves:
    """Expected-recovery curves from a clinic's finished episodes (``patient``, ``session``,
    ``score`` of one measure), in the manner of OQ-Analyst (Lambert et al.): patients grouped by
    the band of their intake score; within a band the change from intake is modelled as
    ``b * log(position)`` (least squares through the origin: most change comes early, then it
    slows), and the upper band is the ``quantile`` of the residuals around that curve. A band with
    fewer than ``min_episodes`` finished episodes uses the published-norm fallback (see
    ``FALLBACK_PROPORTION_AT_8``)."""
    data = finished.dropna(subset=["score"]).sort_values([c.PATIENT, c.SESSION])
    intake = data.groupby(c.PATIENT)["score"].transform("first")
    first_session = data.groupby(c.PATIENT)[c.SESSION].transform("first")
    data = data.assign(
        band=intake.map(spec.band),
        change=data["score"] - intake,
        position=data[c.SESSION] - first_session + 1,
    )
    log_t = np.log(np.clip(np.arange(sessions + 1, dtype=float), 1.0, None))
    expected: dict[str, np.ndarray] = {}
    upper: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    episodes: dict[str, int] = {}
    bounds = [lowest for lowest, _ in spec.bands[1:]] + [spec.max_score + 1]
    for (lowest, band), above in zip(spec.bands, bounds, strict=True):
        group = data[data["band"] == band]
        n_episodes = int(group[c.PATIENT].nunique())
        lx = np.log(group["position"].to_numpy(float))
        if n_episodes >= min_episodes and float(lx @ lx) > 0:
            intake_mid = float(group.groupby(c.PATIENT)["score"].first().mean())
            y = group["change"].to_numpy(float)
            slope = float(lx @ y / (lx @ lx))
            spread = float(np.quantile((y - slope * lx)[lx > 0], quantile))
            # No extrapolation past the longest episodes the curve was fitted on.
            level_off = float(group["position"].max())
            source[band] = "clinic"
        else:
            intake_mid = (lowest + above - 1) / 2
            slope = (FALLBACK_PROPORTION_AT_8 - 1.0) * intake_mid / math.log(8.0)
            spread = FALLBACK_BAND_FACTOR * spec.reliable_change
            level_off = FALLBACK_LEVEL_OFF
            source[band] = "published"
        episodes[band] = n_episodes
        curve = intake_mid + slope * np.minimum(log_t, math.log(max(level_off, 1.0)))
        expected[band] = np.clip(curve, 0, spec.max_score)
        upper[band] = np.clip(curve + spread, 0, spec.max_score)
    return RecoveryCurves(measure=spec.code, expected=expected, upper=upper, source=source, episodes=episodes)


def not_on_track(scores: pd.DataFrame, curves: RecoveryCurves, spec: MeasureSpec) -> pd.DataFrame:
    """Per patient the latest score against the expected-recovery band for their intake band and
    session: ``not_on_track`` when the change since intake is worse than the band's upper bound
    (``expected - intake + spread``) at that session. ``scores``: ``patient``, ``session``,
    ``score`` of one measure. Columns: patient, intake, band, position, latest, expected, upper,
    not_on_track."""
    data = scores.dropna(subset=["score"]).sort_values([c.PATIENT, c.SESSION])
    first = data.groupby(c.PATIENT).first()
    last = data.groupby(c.PATIENT).last()
    rows = []
    for patient in first.index:
        intake = float(first.at[patient, "score"])
        band = spec.band(intake)
        position = int(last.at[patient, c.SESSION] - first.at[patient, c.SESSION] + 1)
        curve_e, curve_u = curves.expected[band], curves.upper[band]
        at = min(position, curve_e.size - 1)
        # Curves are for the band's mean intake; shift them to this patient's intake.
        offset = intake - float(curve_e[1])
        expected = float(curve_e[at]) + offset
        upper = float(curve_u[at]) + offset
        latest = float(last.at[patient, "score"])
        rows.append(
            {
                c.PATIENT: patient,
                "intake": intake,
                "band": band,
                "position": position,
                "latest": latest,
                "expected": expected,
                "upper": upper,
                "not_on_track": position > 1 and latest > upper,
            }
        )
    return pd.DataFrame(rows)
