"""Shared helpers for the analytics tests (plain frames, no database)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from monitoring.analytics import AnalysisConfig, known_case_clinic


def one_patient(scores: Sequence[float], *, patient: object = "A", first_session: int = 1) -> pd.DataFrame:
    """A patient whose goal, task and bond all equal the given total scores."""
    n = len(scores)
    return pd.DataFrame(
        {
            "patient": [patient] * n,
            "session": list(range(first_session, first_session + n)),
            "goal": list(scores),
            "task": list(scores),
            "bond": list(scores),
        }
    )


@pytest.fixture
def known_config() -> AnalysisConfig:
    """methods.md section 5: SEM 0.19, RC 0.526, pooled within-patient SD 0.19, k 2.5, K 3."""
    return AnalysisConfig(clinic=known_case_clinic())
