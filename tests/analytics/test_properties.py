"""Properties over random cohorts: prospective flags, order independence, agreement with the
plain per-patient implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring.analytics import AnalysisConfig, analyse, known_case_clinic
from monitoring.analytics import columns as c
from monitoring.analytics.reference import reference_events
from monitoring.analytics.simulate import simulate_cohort

CLINIC = known_case_clinic(pooled_within_sd=0.25, sd_ref=0.65)
EVENT_KEYS = [
    c.PATIENT,
    c.SESSION,
    c.SCALE,
    c.KIND,
    c.MAGNITUDE,
    c.THRESHOLD,
    c.RUPTURE_SESSION,
    c.FROM_SESSION,
    c.TO_SESSION,
    c.BASELINE,
    c.S_USED,
    c.EXPLANATION,
]


@st.composite
def cohorts(draw: st.DrawFn) -> pd.DataFrame:
    """Patients with 1-14 sessions (gaps allowed), scores on a quarter-point grid, some missing;
    V shapes, steps and drifts arise from a random walk with occasional jumps."""
    n_patients = draw(st.integers(1, 5))
    rows = []
    for p in range(n_patients):
        n = draw(st.integers(1, 14))
        gaps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
        sessions = np.cumsum(gaps)
        level = draw(st.floats(2.0, 4.8))
        steps = draw(
            st.lists(
                st.sampled_from([-1.25, -0.5, -0.25, 0.0, 0.0, 0.0, 0.25, 0.5, 1.0]), min_size=n, max_size=n
            )
        )
        for session, step in zip(sessions, steps, strict=True):
            level = min(5.0, max(1.0, level + step * draw(st.sampled_from([0.0, 0.5, 1.0]))))
            vals = []
            for _ in range(3):
                v = round((level + draw(st.sampled_from([-0.25, 0.0, 0.25]))) * 4) / 4
                vals.append(min(5.0, max(1.0, v)) if draw(st.integers(0, 19)) else np.nan)
            rows.append(
                {
                    c.PATIENT: f"p{p}",
                    c.SESSION: int(session),
                    c.GOAL: vals[0],
                    c.TASK: vals[1],
                    c.BOND: vals[2],
                }
            )
    return pd.DataFrame(rows)


def normalised(events: pd.DataFrame) -> pd.DataFrame:
    out = events[EVENT_KEYS].copy()
    out[c.PATIENT] = out[c.PATIENT].astype(object)
    return out.sort_values([c.PATIENT, c.SESSION, c.SCALE, c.KIND]).reset_index(drop=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort=cohorts(), cut=st.integers(1, 40))
def test_flags_up_to_t_do_not_change_when_later_sessions_arrive(cohort: pd.DataFrame, cut: int) -> None:
    config = AnalysisConfig(clinic=CLINIC)
    full = analyse(cohort, config).events
    early = cohort[cohort[c.SESSION] <= cut]
    if early.empty:
        return
    partial = analyse(early, config).events
    expected = full[full[c.SESSION] <= cut]
    pd.testing.assert_frame_equal(normalised(partial), normalised(expected), check_categorical=False)


@settings(max_examples=40, deadline=None)
@given(cohort=cohorts(), seed=st.integers(0, 2**31))
def test_shuffling_the_rows_changes_nothing(cohort: pd.DataFrame, seed: int) -> None:
    config = AnalysisConfig(clinic=CLINIC)
    a = analyse(cohort, config)
    b = analyse(cohort.sample(frac=1.0, random_state=seed % (2**32 - 1)).reset_index(drop=True), config)
    for name in ("sessions", "levels", "events", "patterns", "summary"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


@settings(max_examples=40, deadline=None)
@given(cohort=cohorts())
def test_the_engine_agrees_with_the_plain_per_patient_implementation(cohort: pd.DataFrame) -> None:
    config = AnalysisConfig(clinic=CLINIC)
    ours = analyse(cohort, config).events
    ref = reference_events(cohort, clinic=CLINIC, config=config)
    left = normalised(ours)[list(ref.columns)]
    right = ref.copy()
    right[c.PATIENT] = right[c.PATIENT].astype(object)
    for col in (c.RUPTURE_SESSION, c.FROM_SESSION, c.TO_SESSION):
        left[col] = left[col].astype(float)
        right[col] = right[col].astype(float)
    right[c.SESSION] = right[c.SESSION].astype(np.int64)
    pd.testing.assert_frame_equal(left, right, check_categorical=False, check_dtype=False, atol=1e-12, rtol=0)


@pytest.mark.slow  # 12 full analyses of a simulated clinic against the reference: about 30 s
def test_the_engine_agrees_with_the_reference_on_a_simulated_clinic_under_every_preset() -> None:
    cohort = simulate_cohort(60, seed=12).scores
    clinic = analyse(cohort).clinic
    for name in ("strict", "standard", "sensitive", "very_sensitive"):
        for during in ("never", "if_drifting", "always"):
            config = AnalysisConfig.preset(name, clinic=clinic, decline_during_rupture=during)
            ours = normalised(analyse(cohort, config).events)
            ref = reference_events(cohort, clinic=clinic, config=config)
            assert len(ours) == len(ref) > 0, (name, during)
            assert (ours[c.KIND].astype(str).to_numpy() == ref[c.KIND].astype(str).to_numpy()).all()
            assert np.allclose(ours[c.MAGNITUDE].to_numpy(), ref[c.MAGNITUDE].to_numpy(), atol=1e-12)
            for col in (c.RUPTURE_SESSION, c.FROM_SESSION, c.TO_SESSION):  # a decline's window too
                got, want = ours[col].astype(float).to_numpy(), ref[col].astype(float).to_numpy()
                assert np.array_equal(got, want, equal_nan=True), (name, during, col)


@pytest.mark.parametrize(
    "variant",
    [
        {"spread_rule": "floor"},
        {"decline_restart": False},
        {"cusum_prediction_sd": False},
        {"sudden_spread": "window", "sudden_window": 4, "sudden_min_before": 3},
        {"sudden_relative": 0.25},
        {"decline_during_rupture": "always", "repair_window": 2, "repair_tolerance": 0.5},
        {"decline_during_rupture": "never", "min_baseline": 4, "cusum_min_baseline": 5},
    ],
    ids=lambda variant: ",".join(variant),
)
def test_the_engine_agrees_with_the_reference_under_each_rule_variant(variant: dict[str, object]) -> None:
    # Each setting is a branch of the compiled kernel (monitoring/analytics/engine.py).
    cohort = simulate_cohort(25, seed=31).scores
    config = AnalysisConfig(clinic=CLINIC, **variant)  # type: ignore[arg-type]
    ours = normalised(analyse(cohort, config).events)
    ref = reference_events(cohort, clinic=CLINIC, config=config)
    assert len(ours) == len(ref) > 0
    assert (ours[c.KIND].astype(str).to_numpy() == ref[c.KIND].astype(str).to_numpy()).all()
    for col in (c.MAGNITUDE, c.THRESHOLD):
        assert np.allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), atol=1e-12, rtol=0)
    for col in (c.SESSION, c.RUPTURE_SESSION, c.FROM_SESSION, c.TO_SESSION):
        got, want = ours[col].astype(float).to_numpy(), ref[col].astype(float).to_numpy()
        assert np.array_equal(got, want, equal_nan=True), col


def test_more_events_than_the_engine_first_makes_room_for_are_all_kept() -> None:
    # 120 patients whose every scale drops and comes back: a rupture and a repair per five
    # sessions, more events than the kernel's first buffer (an eighth of the sessions) holds.
    shape = [4.0, 4.0, 4.0, 1.0, 4.0]
    cohort = pd.DataFrame(
        {
            c.PATIENT: np.repeat(np.arange(120), len(shape)),
            c.SESSION: np.tile(np.arange(1, len(shape) + 1), 120),
            **{name: np.tile(shape, 120) for name in (c.GOAL, c.TASK, c.BOND)},
        }
    )
    config = AnalysisConfig(clinic=CLINIC)
    ours = normalised(analyse(cohort, config).events)
    ref = reference_events(cohort, clinic=CLINIC, config=config)
    n_sessions = len(cohort) * len(c.SCALES)
    assert len(ours) == len(ref) == 120 * 5 * 2 > n_sessions / 8
    assert (ours[c.KIND].astype(str).to_numpy() == ref[c.KIND].astype(str).to_numpy()).all()
    assert np.array_equal(ours[c.SESSION].to_numpy(), ref[c.SESSION].to_numpy())


def test_patient_ids_of_mixed_types_are_accepted_and_order_independent() -> None:
    frame = pd.DataFrame(
        {
            c.PATIENT: [1, "1", 2.5, 1, "1"],
            c.SESSION: [1, 1, 1, 2, 2],
            c.GOAL: [4.0, 3.0, 4.0, 4.5, 3.5],
            c.TASK: [4.0, 3.0, 4.0, 4.5, 3.5],
            c.BOND: [4.0, 3.0, 4.0, 4.5, 3.5],
        }
    )
    a = analyse(frame).levels
    b = analyse(frame.iloc[::-1].reset_index(drop=True)).levels
    pd.testing.assert_frame_equal(a, b)
    assert len(a[c.PATIENT].unique()) == 3


def test_flags_are_prospective_on_a_simulated_clinic() -> None:
    scores = simulate_cohort(150, seed=31).scores
    clinic = analyse(scores).clinic
    config = AnalysisConfig(clinic=clinic)
    full = analyse(scores, config).events
    for cut in (4, 7, 12, 19, 26):
        partial = analyse(scores[scores[c.SESSION] <= cut], config).events
        pd.testing.assert_frame_equal(
            normalised(partial),
            normalised(full[full[c.SESSION] <= cut]),
            check_categorical=False,
        )
