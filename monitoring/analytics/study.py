"""Simulation study: how often the flags find planted events, and how often they cry wolf.

Protocol for one condition (noise, rounding, session counts, config):

1. Calibrate: simulate a clinic of ``calibration_patients`` with the default scenario mix and
   estimate its reference values (``analyse(...).clinic``), as the product does on a schedule.
2. Evaluate: simulate ``n_patients`` with a mix rich in the scenarios under study (other seed),
   analyse them with the calibration clinic's values (``AnalysisConfig(clinic=...)``), and
   compare the events with the planted truth.

Run ``python -m monitoring.analytics.study`` for the table in docs/methods.md (``--quick`` for a
small run). Criteria (issue 3): rupture at the drop's session >= 95%, repair of its return
>= 95%, persistent drop flagged unrepaired >= 90%, stable patients <= 1.5 rupture-flagged
sessions per 100 (ceiling raters <= 1), task decline flagged within 6 sessions >= 75% while
<= 5% of stable patients ever get a task decline flag.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.analysis import analyse
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.simulate import SCENARIO, SimulatedCohort, simulate_cohort

#: Evaluation mix: enough of every planted scenario for a stable estimate.
STUDY_SCENARIOS: Mapping[str, float] = MappingProxyType(
    {
        "stable": 0.28,
        "ceiling": 0.10,
        "rupture_repair": 0.20,
        "rupture_unrepaired": 0.12,
        "task_decline": 0.18,
        "sudden_gain": 0.06,
        "low_rising": 0.03,
        "high_falling": 0.03,
    }
)

FLOORS: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        "rupture_found": (">=", 0.95),
        "repair_found": (">=", 0.95),
        "unrepaired_found": (">=", 0.90),
        "stable_ruptures_per_100": ("<=", 1.5),
        "ceiling_ruptures_per_100": ("<=", 1.0),
        "decline_found_6": (">=", 0.75),
        "stable_task_decline_share": ("<=", 0.05),
    }
)


@dataclass(frozen=True)
class Condition:
    """One row of the study: simulation settings and the analysis config."""

    name: str = "default"
    noise: float = 0.15
    item_noise: float = 0.35
    rounding: bool = True
    sessions: tuple[int, int] = (6, 30)
    config: AnalysisConfig = field(default_factory=AnalysisConfig)


def _by_patient(events: pd.DataFrame, kind: str, scale: str) -> pd.DataFrame:
    sel = events[(events[c.KIND] == kind) & (events[c.SCALE] == scale)]
    return pd.DataFrame(
        {
            c.PATIENT: sel[c.PATIENT].astype(object).to_numpy(),
            c.SESSION: sel[c.SESSION].to_numpy(),
            c.RUPTURE_SESSION: sel[c.RUPTURE_SESSION].to_numpy(dtype=float, na_value=np.nan),
            c.TO_SESSION: sel[c.TO_SESSION].to_numpy(dtype=float, na_value=np.nan),
        }
    )


def _share(hit: pd.Series) -> float:
    return float(hit.mean()) if len(hit) else float("nan")


def evaluate(cohort: SimulatedCohort, events: pd.DataFrame, *, scale: str = c.TOTAL) -> dict[str, float]:
    """Detection and false-alarm figures of one analysed cohort (see module docstring)."""
    truth = cohort.truth.set_index(c.PATIENT)
    sessions_per = truth["n_sessions"]
    onset = truth["onset"].astype("float")
    out: dict[str, float] = {}

    rup = _by_patient(events, c.RUPTURE, scale)
    rep = _by_patient(events, c.REPAIR, scale)
    unr = _by_patient(events, c.UNREPAIRED, scale)

    rr = truth.index[truth[SCENARIO] == "rupture_repair"]
    hit = rup.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    found = set(hit.loc[hit[c.SESSION] == hit["onset"], c.PATIENT])
    out["rupture_found"] = _share(pd.Series([p in found for p in rr]))
    rep_hit = rep.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    repaired = set(rep_hit.loc[rep_hit[c.RUPTURE_SESSION] == rep_hit["onset"], c.PATIENT])
    out["repair_found"] = _share(pd.Series([p in repaired for p in rr]))
    out["repair_found_given_rupture"] = _share(pd.Series([p in repaired for p in rr if p in found]))
    out["n_rupture_repair"] = float(len(rr))

    ru = truth.index[truth[SCENARIO] == "rupture_unrepaired"]
    un_hit = unr.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    ok = (un_hit[c.RUPTURE_SESSION] >= un_hit["onset"]) & (un_hit[c.RUPTURE_SESSION] <= un_hit["onset"] + 2)
    unrepaired = set(un_hit.loc[ok, c.PATIENT])
    out["unrepaired_found"] = _share(pd.Series([p in unrepaired for p in ru]))
    out["n_rupture_unrepaired"] = float(len(ru))

    all_rupt = events[events[c.KIND] == c.RUPTURE]
    for label, scen in (("stable", "stable"), ("ceiling", "ceiling")):
        ids = truth.index[truth[SCENARIO] == scen]
        n_sessions = float(sessions_per.loc[ids].sum())
        mine = rup[rup[c.PATIENT].isin(ids)]
        out[f"{label}_ruptures_per_100"] = 100.0 * len(mine) / n_sessions if n_sessions else float("nan")
        anyscale = all_rupt[all_rupt[c.PATIENT].astype(object).isin(ids)]
        n_any = anyscale[[c.PATIENT, c.SESSION]].astype({c.PATIENT: object}).drop_duplicates().shape[0]
        out[f"{label}_any_scale_ruptures_per_100"] = (
            100.0 * n_any / n_sessions if n_sessions else float("nan")
        )
        for sc in c.SUBSCALES:
            sub = _by_patient(events, c.RUPTURE, sc)
            out[f"{label}_{sc}_ruptures_per_100"] = (
                100.0 * sub[c.PATIENT].isin(ids).sum() / n_sessions if n_sessions else float("nan")
            )

    dec = _by_patient(events, c.DECLINE, c.TASK)
    td = truth.index[truth[SCENARIO] == "task_decline"]
    d_hit = dec.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    in6 = (d_hit[c.SESSION] > d_hit["onset"]) & (d_hit[c.SESSION] <= d_hit["onset"] + 6)
    found6 = set(d_hit.loc[in6, c.PATIENT])
    out["decline_found_6"] = _share(pd.Series([p in found6 for p in td]))
    task_rupt = _by_patient(events, c.RUPTURE, c.TASK).merge(
        onset.rename("onset"), left_on=c.PATIENT, right_index=True
    )
    r6 = set(
        task_rupt.loc[
            (task_rupt[c.SESSION] > task_rupt["onset"]) & (task_rupt[c.SESSION] <= task_rupt["onset"] + 6),
            c.PATIENT,
        ]
    )
    out["decline_or_task_rupture_6"] = _share(pd.Series([(p in found6) or (p in r6) for p in td]))
    out["n_task_decline"] = float(len(td))
    stable = truth.index[truth[SCENARIO] == "stable"]
    out["stable_task_decline_share"] = _share(pd.Series(stable).isin(set(dec[c.PATIENT])))
    out["stable_total_decline_share"] = _share(
        pd.Series(stable).isin(set(_by_patient(events, c.DECLINE, c.TOTAL)[c.PATIENT]))
    )
    out["n_stable"] = float(len(stable))

    gain = _by_patient(events, c.SUDDEN_GAIN, scale)
    sg = truth.index[truth[SCENARIO] == "sudden_gain"]
    g_hit = gain.merge(onset.rename("onset"), left_on=c.PATIENT, right_index=True)
    gfound = set(g_hit.loc[g_hit[c.TO_SESSION] == g_hit["onset"], c.PATIENT])
    out["sudden_gain_found"] = _share(pd.Series([p in gfound for p in sg]))
    sudden = events[events[c.KIND].isin([c.SUDDEN_GAIN, c.SUDDEN_LOSS]) & (events[c.SCALE] == scale)]
    out["stable_sudden_share"] = _share(pd.Series(stable).isin(set(sudden[c.PATIENT].astype(object))))
    return out


def evaluate_patterns(cohort: SimulatedCohort, patterns: pd.DataFrame) -> dict[str, float]:
    """Share of patients given each pattern label, by planted scenario."""
    merged = cohort.truth[[c.PATIENT, SCENARIO]].merge(
        patterns.assign(**{c.PATIENT: patterns[c.PATIENT].astype(object)})[[c.PATIENT, c.PATTERN]],
        on=c.PATIENT,
    )
    out = {}
    for scen, pat in (
        ("low_rising", c.CORRECTIVE_EXPERIENCE),
        ("high_falling", c.CRISIS),
        ("stable", c.CORRECTIVE_EXPERIENCE),
        ("stable", c.CRISIS),
    ):
        sel = merged[merged[SCENARIO] == scen]
        out[f"{scen}_{pat}"] = float((sel[c.PATTERN] == pat).mean()) if len(sel) else float("nan")
    return out


def run_condition(
    condition: Condition,
    *,
    n_patients: int = 3000,
    calibration_patients: int = 2000,
    seed: int = 2026,
) -> dict[str, float | str]:
    """Calibrate on a default-mix clinic, then evaluate on a study-mix cohort (module docstring)."""

    def simulate(n: int, seed_: int, scenarios: Mapping[str, float] | None) -> SimulatedCohort:
        return simulate_cohort(
            n,
            seed=seed_,
            scenarios=scenarios,
            noise=condition.noise,
            item_noise=condition.item_noise,
            rounding=condition.rounding,
            sessions=condition.sessions,
        )

    calibration = simulate(calibration_patients, seed, None)
    clinic = analyse(calibration.scores, replace(condition.config, clinic=None)).clinic
    cohort = simulate(n_patients, seed + 1, STUDY_SCENARIOS)
    analysis = analyse(cohort.scores, replace(condition.config, clinic=clinic))
    out: dict[str, float | str] = {"condition": condition.name}
    out.update(evaluate(cohort, analysis.events))
    out.update(evaluate_patterns(cohort, analysis.patterns))
    out["floor_sd_total"] = clinic[c.TOTAL].floor_sd(condition.config.spread_floor)
    out["anova_sd_total"] = clinic[c.TOTAL].pooled_within_sd
    return out


def meets_floors(result: Mapping[str, float | str]) -> dict[str, bool]:
    """Which of the issue's floors a study result meets."""
    out = {}
    for key, (op, bound) in FLOORS.items():
        value = float(result[key])
        out[key] = value >= bound if op == ">=" else value <= bound
    return out


def default_conditions() -> list[Condition]:
    """The grid reported in docs/methods.md: simulation settings, then the rules of methods.md
    restored one at a time (ablations of each deviation), then the presets."""
    base = Condition()

    def rule(name: str, **overrides: object) -> Condition:
        return replace(base, name=name, config=AnalysisConfig(**overrides))  # type: ignore[arg-type]

    return [
        base,
        replace(base, name="noise 0.1", noise=0.1),
        replace(base, name="noise 0.2", noise=0.2),
        replace(base, name="noise 0.3", noise=0.3),
        replace(base, name="no item rounding", rounding=False),
        replace(base, name="item noise 0.6", item_noise=0.6),
        replace(base, name="8-12 sessions", sessions=(8, 12)),
        replace(base, name="20-40 sessions", sessions=(20, 40)),
        rule("methods.md: floor = ANOVA pooled SD", spread_floor="anova"),
        rule("methods.md: 1-2 session rule without sqrt(2)", previous_sd_factor=1.0),
        rule("methods.md: CUSUM h 4, no prediction SD", cusum_decision=4.0, cusum_prediction_sd=False),
        rule("CUSUM without the per-session cap", cusum_cap=float("inf")),
        rule("decline never during a rupture", decline_during_rupture="never"),
        rule("decline always during a rupture", decline_during_rupture="always"),
        rule("sudden change: window SD only", sudden_spread="window"),
        rule(
            "all methods.md rules (literal)",
            spread_floor="anova",
            previous_sd_factor=1.0,
            cusum_decision=4.0,
            cusum_prediction_sd=False,
            cusum_cap=float("inf"),
            decline_during_rupture="always",
            sudden_spread="window",
        ),
        replace(base, name="preset strict", config=AnalysisConfig.preset("strict")),
        replace(base, name="preset sensitive", config=AnalysisConfig.preset("sensitive")),
        replace(base, name="preset very_sensitive", config=AnalysisConfig.preset("very_sensitive")),
    ]


TABLE_COLUMNS: Sequence[tuple[str, str, str]] = (
    ("condition", "condition", "{}"),
    ("rupture_found", "rupture at drop", "{:.1%}"),
    ("repair_found", "repair of return", "{:.1%}"),
    ("unrepaired_found", "unrepaired", "{:.1%}"),
    ("stable_ruptures_per_100", "stable: ruptures /100 (total)", "{:.2f}"),
    ("stable_any_scale_ruptures_per_100", "stable: any scale /100", "{:.2f}"),
    ("ceiling_ruptures_per_100", "ceiling: /100", "{:.2f}"),
    ("decline_found_6", "task decline <= 6", "{:.1%}"),
    ("stable_task_decline_share", "stable with task decline", "{:.1%}"),
    ("sudden_gain_found", "sudden gain", "{:.1%}"),
    ("stable_sudden_share", "stable with sudden change", "{:.1%}"),
    ("floor_sd_total", "floor SD (total)", "{:.3f}"),
)


def markdown_table(results: Sequence[Mapping[str, float | str]]) -> str:
    """Results as a markdown table (the one in docs/methods.md)."""
    head = "| " + " | ".join(label for _, label, _ in TABLE_COLUMNS) + " |"
    rule = "|" + "---|" * len(TABLE_COLUMNS)
    lines = [head, rule]
    for res in results:
        cells = [fmt.format(res[key]) for key, _, fmt in TABLE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cohorts, default condition only")
    parser.add_argument("--patients", type=int, default=4000, help="evaluation cohort size")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    conditions = [Condition()] if args.quick else default_conditions()
    n = 800 if args.quick else args.patients
    results = []
    for condition in conditions:
        start = time.perf_counter()
        res = run_condition(condition, n_patients=n, seed=args.seed)
        res["seconds"] = time.perf_counter() - start
        results.append(res)
    print(markdown_table(results))
    print()
    print("Detail (default condition):")
    for key, value in results[0].items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
