"""Two perspectives on one session: where the therapist rates the alliance well above the patient.

Patients and therapists attend to different parts of the relationship, and therapists tend to
miss ruptures their patients report (the seed on client and therapist perspectives; Zilcha-Mano &
Fisher's review). Where the therapist rates sessions too (the WAI-SR therapist form), the *gap*
of a session is the therapist's total minus the patient's. Every pair has its own usual gap (some
therapists rate a little higher than their patients throughout), so a session is raised only when
its gap is well above this pair's usual gap:

- ``usual_gap``: the mean gap of the pair's earlier paired sessions (prospective: a session is
  judged on what came before it), at least :data:`MIN_BASELINE` of them;
- ``spread``: the SD of those gaps, shrunk towards the clinic's gap spread ``prior_sd`` with the
  weight of ``prior_df`` sessions (the empirical-Bayes variance shrinkage of the flags, methods.md
  4.1);
- ``bound`` = usual gap + t x spread x sqrt(1 + 1/n), the one-sided predictive bound of the next
  session's gap at a false-alarm rate ``alpha`` per paired session (t: Student's t quantile with
  the shrunk degrees of freedom). Default ``alpha`` 0.002: 0.2 alarms per 100 sessions of a
  steady pair, a fifth of the clinic's default budget of 1 per 100;
- one alarm per episode of a wide gap: after a raised session the rule waits until a gap is back
  within one spread of the usual gap before it can raise again, and the sessions of the wide gap
  are not counted into the usual gap (they are the event, not the usual).

The clinic's gap spread is :func:`gap_spread`: the robust pooled within-pair SD of the gaps
(successive differences, trimmed). :func:`therapist_gaps` gives each therapist's mean gap over
their pairs, for the therapist's own reflection and supervision, never for ranking colleagues.

Pure: numpy, pandas and scipy's t quantile; no Django.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.clinic import robust_noise_sd

#: Earlier paired sessions a pair needs before its gap is judged.
MIN_BASELINE = 3
#: Default false-alarm rate per paired session of a steady pair.
DEFAULT_ALPHA = 0.002
#: Weight of the clinic's gap spread, in sessions.
DEFAULT_PRIOR_DF = 4.0
#: The gap spread used when a clinic has too few pairs to estimate its own (points on 1-5).
FALLBACK_GAP_SD = 0.25

GAP_COLUMNS = [
    c.PATIENT,
    c.SESSION,
    "patient_total",
    "therapist_total",
    "gap",
    "n_before",
    "usual_gap",
    "spread",
    "bound",
    "raised",
]


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    """patient, session, total (the given total, or the mean of goal, task and bond)."""
    if "total" in frame.columns:
        total = frame["total"].astype(float)
    else:
        total = frame[list(c.SUBSCALES)].astype(float).mean(axis=1, skipna=False)
    return pd.DataFrame(
        {c.PATIENT: frame[c.PATIENT].to_numpy(), c.SESSION: frame[c.SESSION].to_numpy(), "total": total}
    )


def paired_gaps(patient: pd.DataFrame, therapist: pd.DataFrame) -> pd.DataFrame:
    """Sessions both rated: patient, session, patient_total, therapist_total, gap (therapist minus
    patient), ordered by patient and session. Inputs as :func:`analyse` takes (goal, task, bond,
    optionally total)."""
    both = _totals(patient).merge(_totals(therapist), on=[c.PATIENT, c.SESSION], suffixes=("_p", "_t"))
    both = both.dropna(subset=["total_p", "total_t"]).sort_values([c.PATIENT, c.SESSION], kind="stable")
    return pd.DataFrame(
        {
            c.PATIENT: both[c.PATIENT].to_numpy(),
            c.SESSION: both[c.SESSION].astype(int).to_numpy(),
            "patient_total": both["total_p"].to_numpy(),
            "therapist_total": both["total_t"].to_numpy(),
            "gap": (both["total_t"] - both["total_p"]).to_numpy(),
        }
    )


def gap_spread(gaps: pd.DataFrame, *, min_pairs: int = 10) -> float:
    """The clinic's within-pair spread of gaps (robust, from successive differences); the
    fallback :data:`FALLBACK_GAP_SD` with fewer than ``min_pairs`` pairs of 3 or more sessions."""
    if not len(gaps):
        return FALLBACK_GAP_SD
    sizes = gaps.groupby(c.PATIENT, sort=False, observed=True)["gap"].transform("size").to_numpy()
    if np.unique(gaps[c.PATIENT][sizes >= 3]).size < min_pairs:
        return FALLBACK_GAP_SD
    who = gaps[c.PATIENT].to_numpy()
    values = gaps["gap"].to_numpy(dtype=float)
    same = who[1:] == who[:-1]
    diffs = np.diff(values)[same]
    return float(robust_noise_sd(diffs)) if diffs.size else FALLBACK_GAP_SD


def perspective_gaps(
    gaps: pd.DataFrame,
    *,
    prior_sd: float,
    alpha: float = DEFAULT_ALPHA,
    prior_df: float = DEFAULT_PRIOR_DF,
) -> pd.DataFrame:
    """Judge each paired session's gap against the pair's earlier ones (see the module text).

    ``gaps`` is :func:`paired_gaps`'s frame; returns it with ``n_before`` (the usual sessions
    before it), ``usual_gap``,
    ``spread``, ``bound`` (NaN while fewer than :data:`MIN_BASELINE` earlier sessions) and
    ``raised``."""
    from scipy.stats import t as student_t

    if not 0 < alpha < 0.5:
        raise ValueError("alpha must be between 0 and 0.5")
    if not prior_sd > 0:
        raise ValueError("prior_sd must be positive")
    out = gaps.reset_index(drop=True).copy()
    who = out[c.PATIENT].to_numpy()
    x = out["gap"].to_numpy(dtype=float)
    n_rows = x.size
    position = np.zeros(n_rows, dtype=np.int64)
    mean = np.full(n_rows, np.nan)
    spread = np.full(n_rows, np.nan)
    bound = np.full(n_rows, np.nan)
    raised = np.zeros(n_rows, dtype=bool)
    prior_ss = prior_df * prior_sd**2
    # One pass in (patient, session) order; per pair: the usual sessions' count, sum and sum of
    # squares, and whether a wide gap is open (its sessions are the event, not the usual).
    n = s1 = s2 = 0.0
    wide = False
    for i in range(n_rows):
        if i == 0 or who[i] != who[i - 1]:
            n = s1 = s2 = 0.0
            wide = False
        position[i] = int(n)
        if n >= MIN_BASELINE:
            m = s1 / n
            sd = float(np.sqrt((max(s2 - n * m * m, 0.0) + prior_ss) / (n - 1 + prior_df)))
            limit = m + float(student_t.ppf(1 - alpha, n - 1 + prior_df)) * sd * float(np.sqrt(1 + 1 / n))
            mean[i], spread[i], bound[i] = m, sd, limit
            if x[i] >= limit:
                raised[i] = not wide
                wide = True
                continue  # part of the event: not added to the usual gap
            if wide and x[i] > m + sd:
                continue  # not closed yet
            wide = False
        n += 1
        s1 += x[i]
        s2 += x[i] * x[i]
    out["n_before"] = position
    out["usual_gap"] = mean
    out["spread"] = spread
    out["bound"] = bound
    out["raised"] = raised
    return out[GAP_COLUMNS]


def therapist_gaps(gaps: pd.DataFrame, therapist_of: Mapping[object, object]) -> pd.DataFrame:
    """Each therapist's mean gap over their pairs (each pair's mean gap weighted equally):
    therapist, pairs, sessions, mean_gap. For the therapist's own view and supervision."""
    if not len(gaps):
        return pd.DataFrame(columns=["therapist", "pairs", "sessions", "mean_gap"])
    per_pair = gaps.groupby(c.PATIENT, sort=False, observed=True)["gap"].agg(["mean", "size"]).reset_index()
    per_pair["therapist"] = per_pair[c.PATIENT].map(therapist_of)
    per_pair = per_pair.dropna(subset=["therapist"])
    summary = per_pair.groupby("therapist", sort=True).agg(
        pairs=(c.PATIENT, "size"), sessions=("size", "sum"), mean_gap=("mean", "mean")
    )
    return summary.reset_index()


#: The flag kind and rule of a raised gap, as stored (monitoring.models.Flag.Kind).
PERSPECTIVE_GAP = "perspective_gap"
RULE_GAP_ABOVE_USUAL = "gap_above_usual"

EVENT_COLUMNS = (
    c.PATIENT,
    c.SESSION,
    c.SCALE,
    "kind",
    "rule",
    "alarm",
    c.SCORE,
    "therapist_score",
    "gap",
    "usual_gap",
    "s_used",
    "n_baseline",
    "magnitude",
    "threshold",
    "explanation",
)


def perspective_events(judged: pd.DataFrame) -> pd.DataFrame:
    """The raised sessions of :func:`perspective_gaps` as flag events (one per wide gap), on the
    total: ``score`` the patient's total, ``therapist_score`` the therapist's, ``threshold`` the
    gap it was compared with (the bound), ``magnitude`` how far the gap is above the pair's
    usual gap, and a sentence with the numbers."""
    raised = judged[judged["raised"].astype(bool)]
    if raised.empty:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = pd.DataFrame(
        {
            c.PATIENT: raised[c.PATIENT].to_numpy(),
            c.SESSION: raised[c.SESSION].astype(int).to_numpy(),
            c.SCALE: c.TOTAL,
            "kind": PERSPECTIVE_GAP,
            "rule": RULE_GAP_ABOVE_USUAL,
            "alarm": True,
            c.SCORE: raised["patient_total"].to_numpy(dtype=float),
            "therapist_score": raised["therapist_total"].to_numpy(dtype=float),
            "gap": raised["gap"].to_numpy(dtype=float),
            "usual_gap": raised["usual_gap"].to_numpy(dtype=float),
            "s_used": raised["spread"].to_numpy(dtype=float),
            "n_baseline": raised["n_before"].astype(int).to_numpy(),
            "magnitude": (raised["gap"] - raised["usual_gap"]).to_numpy(dtype=float),
            "threshold": raised["bound"].to_numpy(dtype=float),
        }
    )
    events["explanation"] = [
        f"The therapist rated session {s} at {t:.1f} and the patient at {p:.1f}, a difference of {g:+.1f} "
        f"(therapist minus patient). This pair's usual difference is {u:+.1f} (over {n} earlier sessions, "
        f"spread {sd:.2f}); the limit for this session was {b:+.1f}."
        for s, t, p, g, b, u, n, sd in zip(
            events[c.SESSION],
            events["therapist_score"],
            events[c.SCORE],
            events["gap"],
            events["threshold"],
            events["usual_gap"],
            events["n_baseline"],
            events["s_used"],
            strict=True,
        )
    ]
    return events[list(EVENT_COLUMNS)].reset_index(drop=True)
