"""The frozen analysis of a small simulated cohort, to check that optimisations of ``analyse``
change nothing (tests/analytics/test_frozen.py).

The files in ``tests/analytics/data/frozen/`` were written by the engine before the issue 18
optimisations (commit 4d8bce2) with::

    .venv/bin/python -m tests.analytics.frozen

Rewrite them only for a deliberate change of behaviour, and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitoring.analytics import AnalysisConfig, analyse, known_case_clinic
from monitoring.analytics.simulate import simulate_cohort

FROZEN = Path(__file__).resolve().parent / "data" / "frozen"
FRAMES = ("sessions", "levels", "events", "patterns", "summary")


def frozen_cohort() -> pd.DataFrame:
    """200 patients of 3-30 sessions with planted events, missed sessions and blank items."""
    scores = simulate_cohort(200, seed=18, sessions=(3, 30), missing_sessions=0.1, missing_items=0.05).scores
    return scores[["patient", "session", "goal", "task", "bond", "total"]].copy()


def configs() -> dict[str, AnalysisConfig | None]:
    """Clinic values estimated from the cohort, and the known-case clinic given."""
    return {"estimated": None, "given": AnalysisConfig(clinic=known_case_clinic())}


def main() -> None:
    FROZEN.mkdir(parents=True, exist_ok=True)
    scores = frozen_cohort()
    for name, config in configs().items():
        result = analyse(scores, config)
        for frame in FRAMES:
            getattr(result, frame).to_parquet(FROZEN / f"{name}-{frame}.parquet", compression="zstd")


if __name__ == "__main__":
    main()
