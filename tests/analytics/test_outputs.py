"""Shapes and contents of the result frames; patterns; single-patient use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import AnalysisConfig, analyse, known_case_clinic
from monitoring.analytics import columns as c
from monitoring.analytics.engine import rupture_factors
from monitoring.analytics.simulate import simulate_cohort
from tests.analytics.conftest import one_patient


@pytest.fixture(scope="module")
def cohort_analysis():  # type: ignore[no-untyped-def]
    cohort = simulate_cohort(300, seed=21)
    return cohort, analyse(cohort.scores)


def test_frames_have_the_documented_columns(cohort_analysis) -> None:  # type: ignore[no-untyped-def]
    _, analysis = cohort_analysis
    assert list(analysis.sessions.columns) == list(c.SESSION_COLUMNS)
    assert list(analysis.levels.columns) == list(c.LEVEL_COLUMNS)
    assert list(analysis.events.columns) == list(c.EVENT_COLUMNS)
    assert list(analysis.patterns.columns) == list(c.PATTERN_COLUMNS)
    assert len(analysis.events) > 0 and set(analysis.events[c.KIND].astype(str)) <= set(c.KINDS)
    assert set(analysis.sessions[c.SCALE].astype(str)) == set(c.SCALES)


def test_every_event_explains_itself_and_carries_its_numbers(cohort_analysis) -> None:  # type: ignore[no-untyped-def]
    _, analysis = cohort_analysis
    ev = analysis.events
    assert len(ev) > 0  # each .all() below checks rows, not an empty frame
    assert (ev[c.EXPLANATION].str.len() > 40).all()
    assert ev[c.MAGNITUDE].notna().all() and ev[c.THRESHOLD].notna().all()
    repairs = ev[ev[c.KIND].isin([c.REPAIR, c.UNREPAIRED])]
    assert len(repairs) > 0
    assert repairs[c.RUPTURE_SESSION].notna().all()
    assert (repairs[c.RUPTURE_SESSION] < repairs[c.SESSION]).all()
    sudden = ev[ev[c.KIND].isin([c.SUDDEN_GAIN, c.SUDDEN_LOSS])]
    assert len(sudden) > 0
    assert (sudden[c.TO_SESSION] < sudden[c.SESSION]).all() and sudden[c.T_CRIT].notna().all()
    rupt = ev[(ev[c.KIND] == c.RUPTURE) & (ev[c.RULE] == c.RULE_BASELINE)]
    assert len(rupt) > 10
    # The threshold is the predictive bound: t quantile at Phi(k) with d0 + n - 1 df, times
    # sqrt(1 + 1/n), times s_used; recomputed here from the row's own numbers.
    config = analysis.config
    prior_df = np.array(
        [analysis.clinic[s].variance_prior(default_df=config.prior_df_default)[0] for s in c.SCALES]
    )
    factors = rupture_factors(config, prior_df, int(rupt[c.N_BASELINE].max()) + 2)
    expected = (
        factors[rupt[c.SCALE].cat.codes.to_numpy(), rupt[c.N_BASELINE].to_numpy(dtype=int)] * rupt[c.S_USED]
    )
    assert np.allclose(rupt[c.THRESHOLD], expected)
    assert (rupt[c.MAGNITUDE] >= rupt[c.THRESHOLD] - 1e-9).all()


def test_every_repair_or_unrepaired_follows_a_rupture_on_the_same_series(cohort_analysis) -> None:  # type: ignore[no-untyped-def]
    _, analysis = cohort_analysis
    ev = analysis.events.astype({c.PATIENT: object, c.SCALE: object})
    ruptures = set(
        zip(
            ev[c.PATIENT][ev[c.KIND] == c.RUPTURE],
            ev[c.SCALE][ev[c.KIND] == c.RUPTURE],
            ev[c.SESSION][ev[c.KIND] == c.RUPTURE],
            strict=True,
        )
    )
    closing = ev[ev[c.KIND].isin([c.REPAIR, c.UNREPAIRED])]
    assert len(closing) > 0
    for p, s, r in zip(closing[c.PATIENT], closing[c.SCALE], closing[c.RUPTURE_SESSION], strict=True):
        assert (p, s, r) in ruptures


def test_levels_and_summary_agree(cohort_analysis) -> None:  # type: ignore[no-untyped-def]
    _, analysis = cohort_analysis
    lv = analysis.levels
    summary = analysis.summary.set_index(c.SCALE)
    for scale in c.SCALES:
        sel = lv[lv[c.SCALE] == scale]
        assert len(sel) > 0, scale
        assert summary.loc[scale, "n_ruptures"] == sel[c.N_RUPTURES].sum()
        assert summary.loc[scale, "n_sessions"] == sel[c.N].sum()


def test_pattern_labels_are_prompts_for_the_documented_patterns() -> None:
    cohort = simulate_cohort(
        600, seed=22, scenarios={"stable": 0.6, "low_rising": 0.2, "high_falling": 0.2}, sessions=(16, 24)
    )
    clinic = analyse(simulate_cohort(1000, seed=23).scores).clinic
    patterns = analyse(cohort.scores, AnalysisConfig(clinic=clinic)).patterns
    merged = cohort.truth.merge(patterns.astype({c.PATIENT: object}), on=c.PATIENT)
    rate = merged.groupby("scenario")[c.PATTERN].value_counts(normalize=True).unstack(fill_value=0)
    assert rate.loc["low_rising", c.CORRECTIVE_EXPERIENCE] > 0.5
    assert rate.loc["high_falling", c.CRISIS] > 0.5
    assert rate.loc["stable", c.NO_PATTERN] > 0.9
    labelled = merged[merged[c.PATTERN] != c.NO_PATTERN]
    assert labelled[c.EXPLANATION].str.contains("Possible").all()
    assert (merged.loc[merged[c.PATTERN] == c.NO_PATTERN, c.EXPLANATION] == "").all()


def test_one_patient_at_submission_time_uses_the_clinic_values() -> None:
    cohort = simulate_cohort(200, seed=24)
    clinic = analyse(cohort.scores).clinic
    one = cohort.scores[cohort.scores[c.PATIENT] == "P001"]
    alone = analyse(one, AnalysisConfig(clinic=clinic))
    together = analyse(cohort.scores, AnalysisConfig(clinic=clinic))
    mine = together.events[together.events[c.PATIENT] == "P001"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.events.astype({c.PATIENT: object}), mine.astype({c.PATIENT: object}))
    assert alone.clinic is clinic


def test_a_single_session_and_an_empty_scale_are_fine() -> None:
    frame = one_patient([4.0])
    frame[c.BOND] = np.nan
    analysis = analyse(frame, AnalysisConfig(clinic=known_case_clinic()))
    # Without bond there is no total (a total needs all three subscales).
    assert set(analysis.levels[c.SCALE].astype(str)) == {c.GOAL, c.TASK, c.AGREEMENT}
    assert analysis.events.empty and len(analysis.patterns) == 1


def test_open_rupture_is_reported_on_the_level_row() -> None:
    analysis = analyse(one_patient([4.0, 4.1, 4.0, 4.1, 3.0]), AnalysisConfig(clinic=known_case_clinic()))
    assert len(analysis.levels) == len(c.SCALES)
    assert analysis.levels[c.OPEN_RUPTURE].all()


def test_an_empty_frame_and_a_patient_without_scores_give_empty_results() -> None:
    empty = pd.DataFrame(
        {
            c.PATIENT: pd.Series([], dtype=object),
            c.SESSION: pd.Series([], dtype=int),
            c.GOAL: pd.Series([], dtype=float),
            c.TASK: pd.Series([], dtype=float),
            c.BOND: pd.Series([], dtype=float),
        }
    )
    analysis = analyse(empty)
    assert analysis.sessions.empty and analysis.events.empty and analysis.levels.empty
    assert list(analysis.events.columns) == list(c.EVENT_COLUMNS)
    blank = one_patient([np.nan, np.nan])
    analysis = analyse(blank)
    assert analysis.sessions.empty and len(analysis.patterns) == 1
    assert analysis.patterns[c.PATTERN].iloc[0] == c.NO_PATTERN


def test_the_storage_key_of_a_flag_is_unique(cohort_analysis) -> None:  # type: ignore[no-untyped-def]
    _, analysis = cohort_analysis
    key = analysis.events[[c.PATIENT, c.SESSION, c.SCALE, c.KIND]].astype(str)
    assert len(key) > 0
    assert not key.duplicated().any()


def test_the_rules_compile_without_a_writable_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    # numba refuses to decorate with cache=True when no cache directory is writable (a read-only
    # install); the engine then compiles in each process instead of failing at import.
    import numba

    from monitoring.analytics import engine

    njit = numba.njit

    def no_cache_directory(*args, cache=False, **kwargs):  # type: ignore[no-untyped-def]
        if cache:
            raise RuntimeError("cannot cache function 'add': no locator available for file 'engine.py'")
        return njit(*args, cache=cache, **kwargs)

    monkeypatch.setattr(numba, "njit", no_cache_directory)

    def add(a, b):  # type: ignore[no-untyped-def]
        return engine._maximum(a, b) + 1.0

    compiled = engine._compiler()(add)
    assert compiled(2.0, 3.0) == 4.0 and np.isnan(compiled(np.nan, 3.0))


def test_the_engine_refuses_arrays_of_the_wrong_size() -> None:
    # The compiled kernels do no bounds checking: wrong sizes must fail before they run.
    from monitoring.analytics import engine

    codes, session = np.array([0, 0, 1]), np.array([1, 2, 1])
    values = np.full((3, 5), 4.0)
    with pytest.raises(ValueError, match="codes in"):
        engine.lay_out(codes, values, session, 1)  # a code beyond the patients
    with pytest.raises(ValueError, match="x_out"):
        engine.lay_out(codes, values, session, 2, x_out=np.empty(14))
    layout, x, _ = engine.lay_out(codes, values, session, 2)
    clinic = {"pooled": np.ones(5), "sem": np.ones(5), "rc": np.ones(5)}
    with pytest.raises(ValueError, match="one clinic value per scale"):
        engine.run_rules(x, layout, **{**clinic, "rc": np.ones(3)}, config=AnalysisConfig())
    with pytest.raises(ValueError, match="one score per session"):
        engine.run_rules(x[:-1], layout, **clinic, config=AnalysisConfig())
    with pytest.raises(ValueError, match=r"out\.cusum"):
        out = engine.RuleOutputs.empty(x.size)
        out.cusum = np.empty(2)
        engine.run_rules(x, layout, **clinic, config=AnalysisConfig(), out=out)
    assert engine.run_rules(x, layout, **clinic, config=AnalysisConfig()).out.baseline.shape == x.shape
