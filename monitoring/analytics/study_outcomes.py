"""The outcome studies of docs/methods.md section 6, reproducible by hand (not run in CI)::

    python -m monitoring.analytics.study_outcomes            # both tables, about 2 minutes

- :func:`not_on_track_table`: how often "not on track" flags patients whose symptoms improve as
  expected, stay flat or deteriorate, per patient-session and ever, with the published fallback
  curve and with curves estimated from a simulated clinic's finished episodes.
- :func:`alliance_outcome_table`: coverage of the within-patient interval of
  :func:`alliance_outcome` and the sign of the between-patient estimate, on a cohort with a within
  effect and an opposite between effect, and on a null cohort.

Each is run on two generators: :mod:`monitoring.analytics.simulate_symptoms` (item level, AR(1)
noise, the alliance course from :mod:`monitoring.analytics.simulate`) and the generator below,
written apart from it (totals with Gaussian noise, linear-then-flat courses, its own alliance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.analytics.outcomes import PHQ9, alliance_outcome, expected_recovery, not_on_track
from monitoring.analytics.simulate import simulate_cohort
from monitoring.analytics.simulate_symptoms import simulate_symptoms


def independent_cohort(
    n: int, sessions: int, *, course: str, seed: int, within: float = 0.0, between: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(alliance, PHQ-9 totals) written apart from simulate_symptoms: intake uniform 10-24;
    ``improving`` falls linearly by 45% over 8 sessions then stays, ``flat`` stays,
    ``deteriorating`` rises 0.4 points a session; noise N(0, 2.5) on the total, rounded, clipped;
    alliance N(usual, 0.4) with usual N(4, 0.5); next score moved by ``within`` per point of
    alliance above usual; ``between`` points per point of usual alliance above 4."""
    rng = np.random.default_rng(seed)
    alliance, scores = [], []
    for p in range(n):
        usual = rng.normal(4.0, 0.5)
        intake = rng.uniform(10, 24) + between * (usual - 4.0)
        previous_deviation = 0.0
        for t in range(1, sessions + 1):
            if course == "improving":
                centre = intake * (1 - 0.45 * min(t - 1, 7) / 7)
            elif course == "flat":
                centre = intake
            else:
                centre = intake + 0.4 * (t - 1)
            score = float(np.clip(np.rint(centre + within * previous_deviation + rng.normal(0, 2.5)), 0, 27))
            now = usual + rng.normal(0, 0.4)
            previous_deviation = now - usual
            alliance.append((f"I{p}", t, now, now, now))
            scores.append((f"I{p}", t, score))
    return (
        pd.DataFrame(alliance, columns=["patient", "session", "goal", "task", "bond"]),
        pd.DataFrame(scores, columns=["patient", "session", "score"]),
    )


def _library(n: int, sessions: int, *, course: str, seed: int, within: float = 0.0, between: float = 0.0):
    alliance = simulate_cohort(n, seed=seed, sessions=(sessions, sessions)).scores
    symptoms = simulate_symptoms(
        alliance, seed=seed + 1, courses={course: 1.0}, within=within, between=between
    )
    return alliance, symptoms.scores("phq9")


GENERATORS = {"simulate_symptoms": _library, "independent": independent_cohort}


def _rates(scores: pd.DataFrame, curves, sessions: int) -> tuple[float, float, float]:
    flagged = total = 0
    ever: set[object] = set()
    by_8: set[object] = set()
    for upto in range(2, sessions + 1):
        result = not_on_track(scores[scores["session"] <= upto], curves, PHQ9)
        hits = set(result.loc[result["not_on_track"], "patient"])
        flagged += len(hits)
        total += len(result)
        ever |= hits
        if upto <= 8:
            by_8 |= hits
    n = scores["patient"].nunique()
    return flagged / total, len(by_8) / n, len(ever) / n


def not_on_track_table(n: int = 400, sessions: int = 12, seed: int = 2026) -> pd.DataFrame:
    """Rows: generator x curve source x course; columns: share of patient-sessions flagged,
    share of patients flagged by session 8, and ever by ``sessions``. The clinic curves are
    estimated on 1,500 finished episodes (60% improving, 25% flat, 15% deteriorating) of the
    same generator, as a clinic's own would be."""
    rows = []
    for name, generate in GENERATORS.items():
        clinic = pd.concat(
            [
                generate(int(1500 * share), 14, course=course, seed=seed + k)[1].assign(
                    patient=lambda f, k=k: f"c{k}-" + f["patient"].astype(str)
                )
                for k, (course, share) in enumerate(
                    (("improving", 0.6), ("flat", 0.25), ("deteriorating", 0.15))
                )
            ]
        )
        curves = {
            "published": expected_recovery(clinic.iloc[0:0], PHQ9),
            "clinic": expected_recovery(clinic, PHQ9),
        }
        for source, curve in curves.items():
            for k, course in enumerate(("improving", "flat", "deteriorating")):
                _, scores = generate(n, sessions, course=course, seed=seed + 100 + k)
                per_session, by_8, ever = _rates(scores, curve, sessions)
                rows.append((name, source, course, per_session, by_8, ever))
    return pd.DataFrame(
        rows, columns=["generator", "curves", "course", "per_session", "by_session_8", "ever"]
    )


def alliance_outcome_table(
    reps: int = 200, n: int = 60, sessions: int = 10, seed: int = 2026
) -> pd.DataFrame:
    """Rows: generator x (effect, null); columns: share of 95% within intervals containing the true
    within effect, mean within estimate, share of between estimates with the sign opposite to the
    within effect (effect cohorts: within -2, between +3)."""
    rows = []
    for name, generate in GENERATORS.items():
        for label, within in (("effect", -2.0), ("null", 0.0)):
            covered, estimates, opposite = 0, [], 0
            for r in range(reps):
                alliance, scores = generate(
                    n, sessions, course="improving", seed=seed + 1000 * r, within=within, between=3.0
                )
                result = alliance_outcome(alliance, scores, scale="task")
                covered += result.within.ci_low <= within <= result.within.ci_high
                estimates.append(result.within.estimate)
                opposite += result.between.estimate > 0
            rows.append((name, label, within, covered / reps, float(np.mean(estimates)), opposite / reps))
    return pd.DataFrame(
        rows, columns=["generator", "cohort", "true_within", "coverage", "mean_within", "between_positive"]
    )


if __name__ == "__main__":
    pd.set_option("display.width", 160)
    print(not_on_track_table().round(3).to_string(index=False))
    print()
    print(alliance_outcome_table().round(3).to_string(index=False))
