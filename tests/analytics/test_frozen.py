"""``analyse`` gives what it gave before the issue 18 optimisations, on a simulated cohort.

The expected frames were written by the engine before the optimisations (tests/analytics/frozen.py
says how). Flags, kinds, rules, sessions, counts, labels and sentences must be identical; numbers
may differ by rounding only (1e-9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import analyse
from tests.analytics.frozen import FRAMES, FROZEN, configs, frozen_cohort


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    scores = frozen_cohort()
    return {name: analyse(scores, config) for name, config in configs().items()}


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for name in expected.columns:
        g, e = got[name], expected[name]
        assert g.dtype == e.dtype, (name, g.dtype, e.dtype)
        if pd.api.types.is_float_dtype(e.dtype):
            gv, ev = g.to_numpy(dtype=float), e.to_numpy(dtype=float)
            np.testing.assert_array_equal(np.isnan(gv), np.isnan(ev), err_msg=name)
            np.testing.assert_allclose(gv, ev, rtol=0, atol=1e-9, equal_nan=True, err_msg=name)
        else:
            pd.testing.assert_series_equal(g, e, check_exact=True, obj=name)


@pytest.mark.parametrize("config", ["estimated", "given"])
@pytest.mark.parametrize("frame", FRAMES)
def test_same_output_as_before_the_optimisation(results, config, frame):
    expected = pd.read_parquet(FROZEN / f"{config}-{frame}.parquet")
    assert_same_frame(getattr(results[config], frame), expected)


def test_the_frozen_cohort_has_flags_of_every_rule(results):
    events = results["estimated"].events
    assert len(events) > 100
    assert events["alarm"].any() and not events["alarm"].all()
    assert {"rupture", "repair", "unrepaired", "decline"} <= set(events["kind"].astype(str))


def test_a_changed_number_is_caught(results):
    expected = pd.read_parquet(FROZEN / "estimated-sessions.parquet")
    changed = expected.copy()
    changed.loc[3, "z"] += 1e-6
    with pytest.raises(AssertionError):
        assert_same_frame(changed, expected)
    flipped = pd.read_parquet(FROZEN / "estimated-events.parquet")
    expected_events = flipped.copy()
    flipped.loc[0, "alarm"] = not flipped.loc[0, "alarm"]
    with pytest.raises(AssertionError):
        assert_same_frame(flipped, expected_events)
