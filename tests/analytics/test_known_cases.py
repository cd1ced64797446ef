"""The known test cases of methods.md section 5, exactly."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from monitoring.analytics import AnalysisConfig, ClinicParameters, ScaleParameters, analyse
from monitoring.analytics import columns as c
from tests.analytics.conftest import one_patient

CASE_A = [3.8, 3.9, 4.0, 4.0, 3.1, 3.9, 4.1, 4.1]
CASE_B = [4.2, 4.3, 4.2, 3.3, 3.4, 3.2, 3.3]
CASE_C = [4.5, 4.4, 4.25, 4.0, 3.75, 3.5, 3.5, 3.25]
CASE_D = [4.0, 4.1, 3.9, 4.0, 4.1, 4.0]
CASE_E = [3.0, 3.1, 2.9, 3.9, 4.0, 4.1]


def flags(scores: list[float], config: AnalysisConfig, scale: str = c.TOTAL) -> list[tuple[int, str]]:
    events = analyse(one_patient(scores), config).events
    events = events[events[c.SCALE] == scale]
    return list(zip(events[c.SESSION].tolist(), events[c.KIND].astype(str).tolist(), strict=True))


def test_the_known_case_clinic_has_the_stated_sem_and_rc(known_config: AnalysisConfig) -> None:
    params = known_config.clinic[c.TOTAL]
    assert params.sem(0.90) == pytest.approx(0.19, abs=0.001)
    assert params.rc(0.90) == pytest.approx(0.526, abs=0.001)
    assert params.floor_sd("robust") == params.floor_sd("anova") == pytest.approx(0.19)


@pytest.mark.parametrize("scale", c.SCALES)
def test_case_a_v_shaped_rupture_is_repaired(known_config: AnalysisConfig, scale: str) -> None:
    assert flags(CASE_A, known_config, scale) == [(5, c.RUPTURE), (6, c.REPAIR)]


def test_case_a_repair_names_its_rupture(known_config: AnalysisConfig) -> None:
    events = analyse(one_patient(CASE_A), known_config).events
    repair = events[(events[c.KIND] == c.REPAIR) & (events[c.SCALE] == c.TOTAL)].iloc[0]
    assert repair[c.RUPTURE_SESSION] == 5
    assert repair[c.MAGNITUDE] >= repair[c.THRESHOLD]


def test_case_b_unrepaired_rupture_and_sudden_loss(known_config: AnalysisConfig) -> None:
    assert flags(CASE_B, known_config) == [(4, c.RUPTURE), (6, c.SUDDEN_LOSS), (7, c.UNREPAIRED)]
    events = analyse(one_patient(CASE_B), known_config).events
    loss = events[(events[c.KIND] == c.SUDDEN_LOSS) & (events[c.SCALE] == c.TOTAL)].iloc[0]
    assert (loss[c.FROM_SESSION], loss[c.TO_SESSION]) == (3, 4)
    unrepaired = events[(events[c.KIND] == c.UNREPAIRED) & (events[c.SCALE] == c.TOTAL)].iloc[0]
    assert unrepaired[c.RUPTURE_SESSION] == 4


def test_case_c_declining_task_is_flagged_by_session_6(known_config: AnalysisConfig) -> None:
    found = flags(CASE_C, known_config, c.TASK)
    early = [(s, k) for s, k in found if s <= 6 and k in (c.DECLINE, c.RUPTURE)]
    assert early, found
    assert any(k == c.DECLINE and s <= 6 for s, k in found) or (5, c.RUPTURE) in found


def test_case_c_decline_explanation_quotes_the_slope(known_config: AnalysisConfig) -> None:
    events = analyse(one_patient(CASE_C), known_config).events
    decline = events[(events[c.KIND] == c.DECLINE) & (events[c.SCALE] == c.TASK)].iloc[0]
    assert decline[c.SLOPE] < 0
    assert decline[c.EXPLANATION].startswith("Task agreement has fallen about 0.2")


def test_case_d_stable_raises_no_flag_of_any_kind(known_config: AnalysisConfig) -> None:
    assert analyse(one_patient(CASE_D), known_config).events.empty


def test_case_e_sudden_gain_and_no_rupture(known_config: AnalysisConfig) -> None:
    assert flags(CASE_E, known_config) == [(6, c.SUDDEN_GAIN)]
    events = analyse(one_patient(CASE_E), known_config).events
    gain = events[events[c.SCALE] == c.TOTAL].iloc[0]
    assert (gain[c.FROM_SESSION], gain[c.TO_SESSION]) == (3, 4)
    assert not (events[c.KIND] == c.RUPTURE).any()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # With the default priors (a young clinic: typical session-to-session SD 0.30, d0 6) the
        # predictive bound from 3-4 baseline sessions is 0.88-0.99 points: case A's 0.8-point V
        # stays within it, and case B's persistent 0.9-point drop is caught as a decline at
        # session 6 (and the sudden loss) instead of a rupture at 4. With the case clinic's SD
        # (0.19, above) both are ruptures at the drop. See docs/methods.md, "Known cases".
        (CASE_A, []),
        (CASE_B, [(6, c.DECLINE), (6, c.SUDDEN_LOSS)]),
        (CASE_D, []),
        (CASE_E, [(6, c.SUDDEN_GAIN)]),
    ],
)
def test_the_known_cases_with_the_default_priors(case: list[float], expected: list[tuple[int, str]]) -> None:
    # One patient, no clinic given: the configured priors stand in.
    assert flags(case, AnalysisConfig()) == expected


def test_the_default_priors_bound_is_what_the_explanation_says() -> None:
    events = analyse(one_patient([4.2, 4.3, 4.2, 3.3]), AnalysisConfig(k=2.0)).events
    rupture = events[(events[c.KIND] == c.RUPTURE) & (events[c.SCALE] == c.TOTAL)].iloc[0]
    bound = rupture[c.BASELINE] - rupture[c.THRESHOLD]
    assert f"at or below {bound:.2f}" in rupture[c.EXPLANATION]


def test_eb_example_of_methods_md() -> None:
    prior = ScaleParameters(
        clinic_mean=3.9,
        tau2=0.25,
        sigma2=0.09,
        pooled_within_sd=0.3,
        sd_ref=0.6,
        level_q_low=3.56,
        level_q_high=4.24,
    )
    clinic = ClinicParameters(scales=dict.fromkeys(c.SCALES, prior))
    levels = analyse(one_patient([4.2, 4.3, 4.2]), AnalysisConfig(clinic=clinic)).levels
    total = levels[levels[c.SCALE] == c.TOTAL].iloc[0]
    assert total[c.RELIABILITY] == pytest.approx(0.893, abs=0.0005)
    assert total[c.LEVEL_EB] == pytest.approx(4.198, abs=0.0005)
    assert total[c.LEVEL] == pytest.approx(4.2333, abs=0.0001)
    assert bool(total[c.PROVISIONAL]) is False


def test_a_level_from_one_session_is_provisional() -> None:
    # Default priors (tau2 0.25, sigma2 0.09): lam = 0.25 / 0.34 = 0.735 < 0.80.
    levels = analyse(one_patient([4.0]), AnalysisConfig()).levels
    assert len(levels) == len(c.SCALES)  # an empty array would equal any approx()
    assert levels[c.RELIABILITY].to_numpy() == pytest.approx(0.25 / 0.34)
    assert levels[c.PROVISIONAL].all()
    assert levels[c.WITHIN_SD].isna().all()


def test_rupture_explanation_reads_as_a_sentence_with_the_numbers(known_config: AnalysisConfig) -> None:
    events = analyse(one_patient(CASE_A), known_config).events
    rupture = events[(events[c.KIND] == c.RUPTURE) & (events[c.SCALE] == c.TASK)].iloc[0]
    # Baseline 3.925 from 4 sessions, s = 0.19 (the case clinic's SD, the SEM floor), d0 = 6:
    # the bound is the t quantile at Phi(2.5) with 6 + 3 df, times sqrt(1 + 1/4), times s.
    factor = student_t.isf(norm.sf(2.5), 9) * math.sqrt(1.25)
    s = 0.6 * math.sqrt(1 - 0.9)  # the SEM floor (0.1897) is above the shrunk SD here
    assert rupture[c.THRESHOLD] == pytest.approx(factor * s)
    assert rupture[c.EXPLANATION] == (
        f"Task agreement was 3.1, 0.8 points below this patient's usual level (3.9, from 4 sessions), "
        f"at or below {3.925 - factor * s:.2f}: lower than their usual session-to-session variation "
        f"(0.19 points) makes likely by chance."
    )
    assert rupture[c.BASELINE] == pytest.approx(3.925)
    assert rupture[c.K] == 2.5 and rupture[c.N_BASELINE] == 4
    assert rupture[c.RULE] == c.RULE_BASELINE
    assert bool(rupture[c.ALARM]) is False  # a task rupture alone: explained, not raised
    total = events[(events[c.KIND] == c.RUPTURE) & (events[c.SCALE] == c.TOTAL)].iloc[0]
    assert bool(total[c.ALARM]) is True


def test_repair_and_unrepaired_explanations(known_config: AnalysisConfig) -> None:
    a = analyse(one_patient(CASE_A), known_config).events
    b = analyse(one_patient(CASE_B), known_config).events
    repair = a[(a[c.KIND] == c.REPAIR) & (a[c.SCALE] == c.TOTAL)][c.EXPLANATION].iloc[0]
    unrepaired = b[(b[c.KIND] == c.UNREPAIRED) & (b[c.SCALE] == c.TOTAL)][c.EXPLANATION].iloc[0]
    assert repair.startswith("Back to usual: total alliance 3.9") and "session 5" in repair
    assert unrepaired.startswith("Not back to usual 3 sessions after the drop at session 4")


def test_sessions_carry_level_state_and_prospective_baseline(known_config: AnalysisConfig) -> None:
    sessions = analyse(one_patient(CASE_A), known_config).sessions
    total = sessions[sessions[c.SCALE] == c.TOTAL].set_index(c.SESSION)
    assert total[c.LEVEL].iloc[0] == pytest.approx(sum(CASE_A) / len(CASE_A))
    assert total[c.STATE].sum() == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(total.loc[1, c.BASELINE])
    assert total.loc[5, c.BASELINE] == pytest.approx(3.925)
    # The rupture session stays out of the baseline; the repair session comes back in.
    assert total.loc[6, c.BASELINE] == pytest.approx(3.925)
    assert total.loc[7, c.BASELINE] == pytest.approx((3.8 + 3.9 + 4.0 + 4.0 + 3.9) / 5)
    assert total[c.IN_RUPTURE].tolist() == [False, False, False, False, True, False, False, False]


def test_gaps_in_session_numbers_use_completed_session_order(known_config: AnalysisConfig) -> None:
    frame = one_patient(CASE_A)
    frame[c.SESSION] = [1, 2, 4, 5, 9, 10, 12, 13]
    found = flags_frame(frame, known_config)
    assert found == [(9, c.RUPTURE), (10, c.REPAIR)]


def flags_frame(frame: pd.DataFrame, config: AnalysisConfig) -> list[tuple[int, str]]:
    events = analyse(frame, config).events
    events = events[events[c.SCALE] == c.TOTAL]
    return list(zip(events[c.SESSION].tolist(), events[c.KIND].astype(str).tolist(), strict=True))
