"""Simulated PHQ-9 and GAD-7 courses that go with an alliance course, item by item.

Used by the outcome tests, the not-on-track study in docs/methods.md and the demo data seeder.
Deterministic for a given seed. No Django import.

Generative model (PHQ-9 points; GAD-7 follows at 7/9 of the PHQ-9 level with its own noise):

- each patient has an intake severity ~ N(``intake``), clipped to 0-27, and a course:
  ``improving`` (falls towards 55% of intake with a time constant of 4 sessions),
  ``flat`` (stays at intake) or ``deteriorating`` (rises ``0.5`` points per session);
- a between-patient term ``between * (patient's mean alliance - clinic mean)`` shifts the whole
  course (the Hoffart et al. exercise example: opposite in sign to the within effect if wanted);
- session-to-session noise is AR(1) (0.5) with SD ``noise``; the alliance at session t moves the
  score at t + 1 by ``within * (alliance[t] - patient's mean alliance)``, and half of that carries
  on (the AR term), as in a cross-lagged panel;
- item answers: the latent severity split evenly over the items plus item noise N(0, 0.35),
  rounded and clamped to 0-3; PHQ-9 item 9 (thoughts of self-harm) sits 1.9 below the other items,
  so it is above 0 mostly for severe, worsening patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.outcomes import GAD7, PHQ9, MeasureSpec

COURSES: Mapping[str, str] = MappingProxyType(
    {
        "improving": "falls towards 55% of intake, most of it in the first 8 sessions",
        "flat": "stays at intake",
        "deteriorating": "rises 0.5 points per session",
    }
)

ITEM_NOISE = 0.35
RISK_OFFSET = 1.9


@dataclass(frozen=True)
class SymptomCohort:
    """``answers``: one row per patient, session and measure: ``patient``, ``session``,
    ``measure`` ("phq9", "gad7"), ``item_1`` .. ``item_9`` (GAD-7 rows leave 8 and 9 empty) and
    ``score``. ``truth``: one row per patient with ``course``, ``intake`` (latent PHQ-9 level) and
    ``alliance_mean``."""

    answers: pd.DataFrame
    truth: pd.DataFrame

    def scores(self, measure: str) -> pd.DataFrame:
        """``patient``, ``session``, ``score`` of one measure."""
        rows = self.answers[self.answers["measure"] == measure]
        return rows[[c.PATIENT, c.SESSION, "score"]].reset_index(drop=True)


def _course(kind: str, intake: float, t: np.ndarray) -> np.ndarray:
    if kind == "improving":
        return intake * (1.0 - 0.45 * (1.0 - np.exp(-(t - 1) / 4.0)))
    if kind == "flat":
        return np.full(t.shape, intake)
    if kind == "deteriorating":
        return intake + 0.5 * (t - 1)
    raise ValueError(f"unknown course {kind!r}; known: {sorted(COURSES)}")


def _items(latent: np.ndarray, spec: MeasureSpec, rng: np.random.Generator) -> np.ndarray:
    per_item = latent[:, None] / spec.items + rng.normal(0.0, ITEM_NOISE, (latent.size, spec.items))
    if spec.risk_item is not None:
        per_item[:, spec.risk_item - 1] -= RISK_OFFSET
    return np.clip(np.rint(per_item), spec.item_min, spec.item_max)


def simulate_symptoms(
    alliance: pd.DataFrame,
    *,
    seed: int,
    courses: Mapping[str, float] | Mapping[str, str] | None = None,
    within: float = -1.5,
    between: float = 0.0,
    scale: str = c.TASK,
    intake: tuple[float, float] = (15.0, 4.0),
    noise: float = 2.0,
) -> SymptomCohort:
    """PHQ-9 and GAD-7 answers for every patient session in ``alliance`` (``patient``,
    ``session`` and the alliance ``scale`` column; a ``total`` is computed when asked for and
    missing).

    ``courses`` is either a mix (course -> share, drawn per patient) or a mapping patient ->
    course; default: 60% improving, 25% flat, 15% deteriorating. ``within``: PHQ-9 points at the
    next session per alliance point above the patient's own mean; ``between``: PHQ-9 points per
    point of a patient's mean alliance above the clinic mean."""
    rng = np.random.default_rng(seed)
    data = alliance.sort_values([c.PATIENT, c.SESSION]).reset_index(drop=True)
    if scale not in data:
        data[scale] = data[[c.GOAL, c.TASK, c.BOND]].mean(axis=1)
    patients = data[c.PATIENT].unique()
    mix = dict(courses or {"improving": 0.6, "flat": 0.25, "deteriorating": 0.15})
    if set(mix) <= set(COURSES):
        kinds = list(mix)
        weights = np.array([float(str(mix[k])) for k in kinds])
        drawn = rng.choice(kinds, size=patients.size, p=weights / weights.sum())
        course_of = dict(zip(patients, drawn, strict=True))
    else:
        course_of = {p: str(mix[p]) for p in patients}
    means = data.groupby(c.PATIENT)[scale].mean()
    clinic_mean = float(means.mean())
    rows = []
    truth = []
    for patient, sessions in data.groupby(c.PATIENT, sort=False):
        t = sessions[c.SESSION].to_numpy(float)
        deviation = (sessions[scale] - means[patient]).fillna(0.0).to_numpy(float)
        base = float(np.clip(rng.normal(*intake), 0.0, PHQ9.max_score))
        shift = between * (float(means[patient]) - clinic_mean)
        course = _course(course_of[patient], base, t) + shift
        state = np.zeros(t.size)
        for i in range(1, t.size):
            state[i] = 0.5 * state[i - 1] + within * deviation[i - 1] + rng.normal(0.0, noise)
        state[0] = rng.normal(0.0, noise)
        phq = np.clip(course + state, 0.0, PHQ9.max_score)
        gad = np.clip(phq * GAD7.items / PHQ9.items + rng.normal(0.0, noise / 2, t.size), 0.0, GAD7.max_score)
        for spec, latent in ((PHQ9, phq), (GAD7, gad)):
            items = _items(latent, spec, rng)
            for i, session in enumerate(sessions[c.SESSION]):
                row = {c.PATIENT: patient, c.SESSION: int(session), "measure": spec.code}
                row.update({f"item_{k + 1}": float(items[i, k]) for k in range(spec.items)})
                row["score"] = float(items[i].sum())
                rows.append(row)
        truth.append(
            {
                c.PATIENT: patient,
                "course": course_of[patient],
                "intake": base,
                "alliance_mean": float(means[patient]),
            }
        )
    answers = pd.DataFrame(rows)
    for k in range(1, PHQ9.items + 1):
        if f"item_{k}" not in answers:
            answers[f"item_{k}"] = np.nan
    columns = [c.PATIENT, c.SESSION, "measure", *(f"item_{k}" for k in range(1, PHQ9.items + 1)), "score"]
    return SymptomCohort(answers=answers[columns], truth=pd.DataFrame(truth))
