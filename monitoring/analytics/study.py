"""Simulation study: how often the flags find planted events, and how often they cry wolf, as a
therapist meets them.

Two cohort generators written independently of each other: ``bordin``
(:mod:`monitoring.analytics.simulate`: additive latent scores rounded to answers) and ``ordinal``
(:mod:`monitoring.analytics.simulate_ordinal`: AR(1) states, patient-specific noise, an ordinal
item-response model). A rule tuned on one generator's quirks would show it on the other, so every
condition is **calibrated on one and evaluated on the other**:

1. Calibrate: simulate a clinic of ``calibration_patients`` with the generator's default mix,
   estimate its reference values (``analyse(...).clinic``, as ``manage.py estimate_clinics``
   does), and calibrate the thresholds to the condition's false-alarm budget on simulated steady
   patients of that clinic (:func:`monitoring.analytics.calibration.calibrate`).
2. Evaluate: simulate ``n_patients`` with the other generator and a mix rich in the scenarios
   under study (other seed), analyse them with the calibrated clinic, and compare the alarms with
   the planted truth.

False alarms are counted per patient-session, all scales and kinds together, as the caseload
counts them (an *attention session*: a session with at least one alarm; ``analysis._alarms``).
Detection is judged on what raises attention (alarms), except repairs, which are good news.

``python -m monitoring.analytics.study`` prints the tables of docs/methods.md (``--quick`` for a
small run).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.analysis import analyse
from monitoring.analytics.calibration import attention_sessions, calibrate
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.simulate import SCENARIO, SimulatedCohort, simulate_cohort

#: Evaluation mix: enough of every planted scenario for a stable estimate.
STUDY_SCENARIOS: Mapping[str, float] = MappingProxyType(
    {
        "stable": 0.30,
        "ceiling": 0.08,
        "rupture_repair": 0.16,
        "rupture_unrepaired": 0.10,
        "task_decline": 0.14,
        "slow_decline": 0.08,
        "u_shape": 0.04,
        "sudden_gain": 0.05,
        "low_rising": 0.025,
        "high_falling": 0.025,
    }
)

#: The issue's floors, by noise level: (metric, op, bound).
FLOORS_DEFAULT: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "stable_attention_per_100": ("<=", 1.0),
        "stable_ever": ("<=", 0.12),
        "rupture_found": (">=", 0.95),
        "repair_found": (">=", 0.95),
        "unrepaired_found": (">=", 0.90),
        "decline_found_6": (">=", 0.75),
    }
)
FLOORS_NOISY: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "stable_attention_per_100": ("<=", 1.5),
        "stable_false_unrepaired": ("<=", 0.01),
        "rupture_found": (">=", 0.75),
    }
)
#: Kept for the tests of earlier versions of the study.
FLOORS = FLOORS_DEFAULT

Generator = Callable[..., SimulatedCohort]


def _bordin(
    n: int, *, seed: int, scenarios: Mapping[str, float] | None, condition: Condition
) -> SimulatedCohort:
    return simulate_cohort(
        n,
        seed=seed,
        scenarios=scenarios,
        sessions=condition.sessions,
        session_sd=condition.session_sd,
        ar=condition.ar,
        missing_sessions=condition.missing_sessions,
        missing_items=condition.missing_items,
    )


def _ordinal(
    n: int, *, seed: int, scenarios: Mapping[str, float] | None, condition: Condition
) -> SimulatedCohort:
    from monitoring.analytics.simulate_ordinal import simulate_ordinal_cohort

    return simulate_ordinal_cohort(
        n,
        seed=seed,
        scenarios=scenarios,
        sessions=condition.sessions,
        session_sd=condition.session_sd,
        missing_sessions=condition.missing_sessions,
        missing_items=condition.missing_items,
    )


GENERATORS: Mapping[str, Callable[..., SimulatedCohort]] = MappingProxyType(
    {"bordin": _bordin, "ordinal": _ordinal}
)


@dataclass(frozen=True)
class Condition:
    """One row of the study: the simulated clinic, the budget and the rules' settings."""

    name: str = "default noise"
    session_sd: tuple[float, float] = (0.12, 0.30)
    sessions: tuple[int, int] = (6, 30)
    ar: float = 0.0
    missing_sessions: float = 0.0
    missing_items: float = 0.0
    budget: float = 1.0
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    calibrate_on: str = "bordin"
    evaluate_on: str = "ordinal"

    @property
    def noisy(self) -> bool:
        return self.session_sd[0] >= 0.3


def _patient(events: pd.DataFrame) -> pd.Series:
    return events[c.PATIENT].astype(object)


def _share(ids: pd.Index, hit: set[object]) -> float:
    return float(np.mean([p in hit for p in ids])) if len(ids) else float("nan")


def evaluate(cohort: SimulatedCohort, events: pd.DataFrame) -> dict[str, float]:
    """Detection and false-alarm figures of one analysed cohort (see the module docstring)."""
    truth = cohort.truth.set_index(c.PATIENT)
    onset = truth["onset"].astype("float")
    scen = truth[SCENARIO]
    alarms = events[events[c.ALARM]].assign(**{c.PATIENT: lambda e: _patient(e)})
    alarms = alarms.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    out: dict[str, float] = {}

    def ids(name: str) -> pd.Index:
        return truth.index[scen == name]

    rupt = alarms[alarms[c.KIND] == c.RUPTURE]
    out["rupture_found"] = _share(
        ids("rupture_repair"), set(rupt.loc[rupt[c.SESSION] == rupt["onset"], c.PATIENT])
    )
    total_events = events[events[c.SCALE] == c.TOTAL].assign(**{c.PATIENT: lambda e: _patient(e)})
    total_events = total_events.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    rep = total_events[total_events[c.KIND] == c.REPAIR]
    out["repair_found"] = _share(
        ids("rupture_repair"), set(rep.loc[rep[c.RUPTURE_SESSION].astype("float") == rep["onset"], c.PATIENT])
    )
    unr = alarms[alarms[c.KIND] == c.UNREPAIRED]
    near = (unr[c.RUPTURE_SESSION].astype("float") >= unr["onset"]) & (
        unr[c.RUPTURE_SESSION].astype("float") <= unr["onset"] + 2
    )
    out["unrepaired_found"] = _share(ids("rupture_unrepaired"), set(unr.loc[near, c.PATIENT]))

    dec = alarms[alarms[c.KIND] == c.DECLINE]
    after = dec[c.SESSION] - dec["onset"]
    # As the therapist meets it: the patient is raised within 6 sessions of the decline's start
    # (by the decline rule, or by a rupture when a step of the fall is large).
    since = alarms[c.SESSION] - alarms["onset"]
    raised = alarms[(since > 0) & (since <= 6) & alarms[c.KIND].isin([c.DECLINE, c.RUPTURE])]
    out["decline_found_6"] = _share(ids("task_decline"), set(raised[c.PATIENT]))
    out["decline_rule_found_6"] = _share(
        ids("task_decline"), set(dec.loc[(after > 0) & (after <= 6), c.PATIENT])
    )
    slow = ids("slow_decline")
    for rate in (0.05, 0.10):
        mine = slow[np.isclose(truth.loc[slow, "magnitude"].astype(float), rate)]
        out[f"slow_decline_{rate:.2f}_found_10"] = _share(
            mine, set(dec.loc[(after > 0) & (after <= 10), c.PATIENT])
        )
    u = ids("u_shape")
    u_dec = dec[dec[c.PATIENT].isin(u)].drop_duplicates([c.PATIENT, c.SESSION]).groupby(c.PATIENT).size()
    out["u_shape_flagged"] = _share(u, set(alarms.loc[alarms[c.PATIENT].isin(u), c.PATIENT]))
    out["u_shape_declines_per_patient"] = float(u_dec.reindex(u, fill_value=0).mean()) if len(u) else math.nan

    gains = total_events[total_events[c.KIND] == c.SUDDEN_GAIN]
    out["sudden_gain_found"] = _share(
        ids("sudden_gain"), set(gains.loc[gains[c.TO_SESSION].astype("float") == gains["onset"], c.PATIENT])
    )

    att = attention_sessions(events).assign(**{c.PATIENT: lambda a: a[c.PATIENT].astype(object)})
    for label in ("stable", "ceiling"):
        who = ids(label)
        n_sessions = float(truth.loc[who, "n_sessions"].sum())
        mine = att[att[c.PATIENT].isin(who)]
        out[f"{label}_attention_per_100"] = 100.0 * len(mine) / n_sessions if n_sessions else math.nan
        out[f"{label}_ever"] = _share(who, set(mine[c.PATIENT]))
    stable = ids("stable")
    out["stable_false_unrepaired"] = _share(stable, set(unr[c.PATIENT]))
    st_alarms = alarms[alarms[c.PATIENT].isin(stable)]
    n_stable_sessions = float(truth.loc[stable, "n_sessions"].sum())
    for kind in (c.RUPTURE, c.UNREPAIRED, c.DECLINE, c.SUDDEN_LOSS):
        mine = st_alarms[st_alarms[c.KIND] == kind][[c.PATIENT, c.SESSION]].drop_duplicates()
        out[f"stable_{kind}_per_100"] = (
            100.0 * len(mine) / n_stable_sessions if n_stable_sessions else math.nan
        )
    total_rupt = st_alarms[(st_alarms[c.KIND] == c.RUPTURE) & (st_alarms[c.SCALE] == c.TOTAL)]
    out["stable_total_rupture_per_100"] = (
        100.0 * len(total_rupt) / n_stable_sessions if n_stable_sessions else math.nan
    )
    out["n_stable"] = float(len(stable))
    out["n_rupture_repair"] = float(len(ids("rupture_repair")))
    return out


def stable_session_sd(cohort: SimulatedCohort) -> float:
    """Median within-patient SD of the total among the cohort's steady patients (what "session
    SD" means in the tables)."""
    stable = cohort.truth.loc[cohort.truth[SCENARIO] == "stable", c.PATIENT]
    scores = cohort.scores[cohort.scores[c.PATIENT].astype(object).isin(set(stable))]
    return float(scores.groupby(scores[c.PATIENT].astype(object))[c.TOTAL].std().median())


def neyman_pearson(*, drop: np.ndarray, sd: float, alpha: float) -> float:
    """The best any single-session test can do for a drop of ``drop`` points against a known
    baseline and SD at a per-session false-alarm rate ``alpha``: ``Phi(d / sigma - z_alpha)``
    (Neyman-Pearson lemma for a shift in a normal mean), averaged over the drops."""
    if not alpha > 0 or not sd > 0 or drop.size == 0:
        return math.nan
    nd = NormalDist()
    z = nd.inv_cdf(1.0 - alpha)
    return float(np.mean([nd.cdf(d / sd - z) for d in drop]))


def run_condition(
    condition: Condition,
    *,
    n_patients: int = 3000,
    calibration_patients: int = 2000,
    seed: int = 2026,
) -> dict[str, float | str]:
    """Calibrate on one generator's default-mix clinic, evaluate on the other's study mix."""
    make_cal, make_eval = GENERATORS[condition.calibrate_on], GENERATORS[condition.evaluate_on]
    calibration = make_cal(calibration_patients, seed=seed, scenarios=None, condition=condition)
    config = replace(condition.config, clinic=None, budget=condition.budget)
    clinic = analyse(calibration.scores, config).clinic
    cal = calibrate(clinic, config, budget=condition.budget)
    cohort = make_eval(n_patients, seed=seed + 1, scenarios=STUDY_SCENARIOS, condition=condition)
    analysis = analyse(cohort.scores, replace(config, clinic=clinic, stringency=cal.stringency))
    out: dict[str, float | str] = {
        "condition": condition.name,
        "direction": f"{condition.calibrate_on} -> {condition.evaluate_on}",
        "budget": condition.budget,
        "stringency": cal.stringency,
        "calibration_rate": cal.rate,
    }
    out.update(evaluate(cohort, analysis.events))
    sd = stable_session_sd(cohort)
    out["stable_session_sd"] = sd
    truth = cohort.truth
    drops = truth.loc[truth[SCENARIO] == "rupture_repair", "magnitude"].astype(float).to_numpy()
    alpha = float(out["stable_total_rupture_per_100"]) / 100.0
    out["rupture_np_limit"] = neyman_pearson(drop=drops, sd=sd, alpha=alpha if alpha > 0 else 0.001)
    return out


def meets_floors(
    result: Mapping[str, float | str], floors: Mapping[str, tuple[str, float]]
) -> dict[str, bool]:
    """Which floors a study result meets."""
    out = {}
    for key, (op, bound) in floors.items():
        value = float(result[key])
        out[key] = value >= bound if op == ">=" else value <= bound
    return out


def both_ways(condition: Condition) -> list[Condition]:
    """The condition calibrated on each generator and evaluated on the other."""
    return [
        replace(condition, calibrate_on="bordin", evaluate_on="ordinal"),
        replace(condition, calibrate_on="ordinal", evaluate_on="bordin"),
    ]


def default_conditions() -> list[Condition]:
    """The grid reported in docs/methods.md."""
    base = Condition()
    grid = [
        base,
        replace(base, name="session SD 0.15", session_sd=(0.15, 0.15)),
        replace(base, name="session SD 0.3", session_sd=(0.3, 0.3)),
        replace(base, name="noisy: session SD 0.3-0.5", session_sd=(0.3, 0.5)),
        replace(base, name="session SD 0.4", session_sd=(0.4, 0.4)),
        replace(base, name="session SD 0.5", session_sd=(0.5, 0.5)),
        replace(base, name="AR(1) 0.4", ar=0.4),
        replace(base, name="short episodes (4-6)", sessions=(4, 6)),
        replace(base, name="missing: 5% sessions, 3% items", missing_sessions=0.05, missing_items=0.03),
    ]
    return [way for condition in grid for way in both_ways(condition)]


def tradeoff_conditions(session_sd: tuple[float, float] = (0.12, 0.30)) -> list[Condition]:
    """Budgets from 0.25 to 4 attention sessions per 100: the trade-off curve."""
    out = []
    for budget in (0.25, 0.5, 1.0, 2.0, 4.0):
        cond = Condition(name=f"budget {budget:g}", budget=budget, session_sd=session_sd)
        out.extend(both_ways(cond))
    return out


TABLE_COLUMNS: Sequence[tuple[str, str, str]] = (
    ("condition", "condition", "{}"),
    ("direction", "calibrated -> evaluated", "{}"),
    ("stable_session_sd", "session SD", "{:.2f}"),
    ("stable_attention_per_100", "steady: attention /100", "{:.2f}"),
    ("stable_ever", "steady: ever raised", "{:.1%}"),
    ("stable_false_unrepaired", "steady: false unrepaired", "{:.1%}"),
    ("rupture_found", "rupture at drop", "{:.1%}"),
    ("rupture_np_limit", "NP limit", "{:.1%}"),
    ("repair_found", "repair", "{:.1%}"),
    ("unrepaired_found", "unrepaired", "{:.1%}"),
    ("decline_found_6", "task decline <= 6", "{:.1%}"),
    ("slow_decline_0.10_found_10", "slow -0.10 <= 10", "{:.1%}"),
    ("slow_decline_0.05_found_10", "slow -0.05 <= 10", "{:.1%}"),
    ("u_shape_declines_per_patient", "U: declines/patient", "{:.2f}"),
    ("ceiling_attention_per_100", "ceiling: /100", "{:.2f}"),
)


def markdown_table(
    results: Sequence[Mapping[str, float | str]], columns: Sequence[tuple[str, str, str]] = TABLE_COLUMNS
) -> str:
    """Results as a markdown table (the ones in docs/methods.md)."""
    head = "| " + " | ".join(label for _, label, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    lines = [head, rule]
    for res in results:
        cells = []
        for key, _, fmt in columns:
            value = res.get(key, math.nan)
            cells.append("n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TRADEOFF_COLUMNS: Sequence[tuple[str, str, str]] = (
    ("condition", "budget", "{}"),
    ("direction", "calibrated -> evaluated", "{}"),
    ("stringency", "stringency", "{:.2f}"),
    ("stable_attention_per_100", "steady: attention /100", "{:.2f}"),
    ("stable_ever", "steady: ever raised", "{:.1%}"),
    ("rupture_found", "rupture at drop", "{:.1%}"),
    ("rupture_np_limit", "NP limit", "{:.1%}"),
    ("unrepaired_found", "unrepaired", "{:.1%}"),
    ("decline_found_6", "task decline <= 6", "{:.1%}"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cohorts, default condition only")
    parser.add_argument("--patients", type=int, default=4000, help="evaluation cohort size")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    n = 800 if args.quick else args.patients
    grids = [("Conditions", default_conditions(), TABLE_COLUMNS)]
    if not args.quick:
        grids += [
            ("Trade-off, default noise", tradeoff_conditions(), TRADEOFF_COLUMNS),
            ("Trade-off, noisy", tradeoff_conditions((0.3, 0.5)), TRADEOFF_COLUMNS),
        ]
    else:
        grids = [("Conditions", both_ways(Condition()), TABLE_COLUMNS)]
    if not args.quick:
        print("### Honest power\n")
        print(markdown_table(power_table().to_dict("records"), POWER_COLUMNS))
        print()
    for title, conditions, columns in grids:
        results = []
        for condition in conditions:
            start = time.perf_counter()
            res = run_condition(condition, n_patients=n, seed=args.seed)
            res["seconds"] = time.perf_counter() - start
            results.append(res)
        print(f"### {title}\n")
        print(markdown_table(results, columns))
        print()
    return 0


# --- Honest power -------------------------------------------------------------------------------


def _steady_series(
    rng: np.random.Generator, patients: int, sessions: int, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Steady totals (levels N(3.9, 0.4), iid normal session noise ``sd``) as subscale triples."""
    level = rng.normal(3.9, 0.4, (patients, 1))
    noise = rng.normal(0.0, sd, (patients, sessions))
    return level + noise, np.tile(np.arange(1, sessions + 1), (patients, 1))


def _frame(values: np.ndarray, session: np.ndarray) -> pd.DataFrame:
    patients, sessions = values.shape
    flat = np.clip(values.reshape(-1), 1.0, 5.0)
    return pd.DataFrame(
        {
            c.PATIENT: np.repeat(np.arange(patients), sessions),
            c.SESSION: session.reshape(-1),
            c.GOAL: flat,
            c.TASK: flat,
            c.BOND: flat,
        }
    )


def power_table(
    *,
    sds: Sequence[float] = (0.15, 0.3, 0.5),
    drops: Sequence[float] = (0.5, 1.0, 1.5),
    slopes: Sequence[float] = (0.05, 0.10, 0.15),
    budget: float = 1.0,
    patients: int = 1500,
    seed: int = 7,
) -> pd.DataFrame:
    """Detection power of the rupture and decline rules by noise and effect size, next to the
    single-session Neyman-Pearson limit at the same false-alarm rate.

    For each session SD: a clinic of steady patients with that noise gives the reference values
    and the calibration to ``budget``; then a drop of ``d`` points at session 10 (9 steady
    sessions before) is "found" if a rupture alarm is raised at that session, and a decline of
    ``s`` points per session from session 10 on is found if an alarm is raised within 6 and
    within 10 sessions (with the median sessions to the alarm). The NP limit of a drop is
    ``Phi(d / sd - z_alpha)`` with alpha the per-session rate of rupture alarms on the steady
    patients: the best any test of that one session could do at that false-alarm rate. Series
    are the total with equal subscales (a clean, generator-free view of the rules themselves).
    """
    rng = np.random.default_rng(seed)
    nd = NormalDist()
    rows = []
    for sd in sds:
        calib_values, calib_sessions = _steady_series(rng, patients, 20, sd)
        config = AnalysisConfig(budget=budget)
        clinic = analyse(_frame(calib_values, calib_sessions), config).clinic
        cal = calibrate(clinic, config, budget=budget)
        config = replace(config, clinic=clinic, stringency=cal.stringency)
        steady_values, steady_sessions = _steady_series(rng, patients, 20, sd)
        steady_events = analyse(_frame(steady_values, steady_sessions), config).events
        rupt = steady_events[steady_events[c.ALARM] & (steady_events[c.KIND] == c.RUPTURE)]
        alpha = max(len(rupt[[c.PATIENT, c.SESSION]].drop_duplicates()) / steady_values.size, 1e-4)
        attention = len(attention_sessions(steady_events)) / steady_values.size * 100
        for drop in drops:
            values, sessions = _steady_series(rng, patients, 12, sd)
            values[:, 9] -= drop
            ev = analyse(_frame(values, sessions), config).events
            hit = ev[ev[c.ALARM] & (ev[c.KIND] == c.RUPTURE) & (ev[c.SESSION] == 10)]
            rows.append(
                {
                    "rule": "rupture",
                    "session_sd": sd,
                    "effect": f"drop {drop:g}",
                    "found": hit[c.PATIENT].nunique() / patients,
                    "np_limit": nd.cdf(drop / sd - nd.inv_cdf(1 - alpha)),
                    "steady_attention_per_100": attention,
                    "median_sessions": 1.0,
                }
            )
        for slope in slopes:
            values, sessions = _steady_series(rng, patients, 24, sd)
            values[:, 9:] -= slope * np.arange(1, 16)
            ev = analyse(_frame(values, sessions), config).events
            raised = ev[ev[c.ALARM] & ev[c.KIND].isin([c.DECLINE, c.RUPTURE]) & (ev[c.SESSION] >= 10)]
            first = raised.groupby(c.PATIENT, observed=True)[c.SESSION].min() - 9
            rows.append(
                {
                    "rule": "decline",
                    "session_sd": sd,
                    "effect": f"-{slope:.2f}/session",
                    "found": float((first <= 6).sum()) / patients,
                    "found_10": float((first <= 10).sum()) / patients,
                    # The NP limit of one session after 6 sessions of decline (the drop by then).
                    "np_limit": nd.cdf(6 * slope / sd - nd.inv_cdf(1 - alpha)),
                    "steady_attention_per_100": attention,
                    "median_sessions": float(first.median()) if len(first) else math.nan,
                }
            )
    return pd.DataFrame(rows)


POWER_COLUMNS: Sequence[tuple[str, str, str]] = (
    ("rule", "rule", "{}"),
    ("session_sd", "session SD", "{:.2f}"),
    ("effect", "effect", "{}"),
    ("found", "found (at the drop / within 6)", "{:.1%}"),
    ("found_10", "within 10", "{:.1%}"),
    ("median_sessions", "median sessions to alarm", "{:.0f}"),
    ("np_limit", "NP limit", "{:.1%}"),
    ("steady_attention_per_100", "steady: attention /100", "{:.2f}"),
)


if __name__ == "__main__":
    raise SystemExit(main())
