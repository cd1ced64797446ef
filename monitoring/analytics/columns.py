"""Column names, scale names and event kinds of the analytics frames.

Every frame the package returns uses these names; import them rather than typing strings, so a
rename is one edit. See ``docs/methods.md`` for what each column means.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

# Input columns (one row per patient-rated response).
PATIENT: Final = "patient"
SESSION: Final = "session"
GOAL: Final = "goal"
TASK: Final = "task"
BOND: Final = "bond"
TOTAL: Final = "total"
AGREEMENT: Final = "agreement"

SUBSCALES: Final = (GOAL, TASK, BOND)
#: Order of the scales in every output frame.
SCALES: Final = (GOAL, TASK, BOND, TOTAL, AGREEMENT)
SCALE_LABELS: Final = {
    GOAL: "Goal agreement",
    TASK: "Task agreement",
    BOND: "Bond",
    TOTAL: "Total alliance",
    AGREEMENT: "Goal and task agreement",
}
SCALE_DTYPE: Final = pd.CategoricalDtype(list(SCALES), ordered=True)

# analysis.sessions (one row per patient, scale and completed session).
SCALE: Final = "scale"
T: Final = "t"  # 1-based index of the completed session within (patient, scale)
SCORE: Final = "score"
LEVEL: Final = "level"
STATE: Final = "state"
Z: Final = "z"
BASELINE: Final = "baseline"
N_BASELINE: Final = "n_baseline"
S_USED: Final = "s_used"
CUSUM: Final = "cusum"
IN_RUPTURE: Final = "in_rupture"

SESSION_COLUMNS: Final = (
    PATIENT,
    SESSION,
    SCALE,
    T,
    SCORE,
    LEVEL,
    STATE,
    Z,
    BASELINE,
    N_BASELINE,
    S_USED,
    CUSUM,
    IN_RUPTURE,
)

# analysis.levels (one row per patient and scale).
N: Final = "n"
FIRST_SESSION: Final = "first_session"
LAST_SESSION: Final = "last_session"
LEVEL_EB: Final = "level_eb"
LEVEL_EB_LOW: Final = "level_eb_low"  # 95% posterior interval of the EB level
LEVEL_EB_HIGH: Final = "level_eb_high"
DECLINE_STATE: Final = "decline_state"  # after a decline: declining, levelled_off, recovered, ""
DECLINING: Final = "declining"
LEVELLED_OFF: Final = "levelled_off"
RECOVERED: Final = "recovered"
RELIABILITY: Final = "reliability"
PROVISIONAL: Final = "provisional"
WITHIN_SD: Final = "within_sd"
S_LEVEL: Final = "s_level"
SLOPE: Final = "slope"
DETRENDED_LEVEL: Final = "detrended_level"
RESIDUAL_SD: Final = "residual_sd"
CEILING: Final = "ceiling"
LAST_SCORE: Final = "last_score"
N_RUPTURES: Final = "n_ruptures"
N_REPAIRS: Final = "n_repairs"
N_UNREPAIRED: Final = "n_unrepaired"
N_DECLINES: Final = "n_declines"
OPEN_RUPTURE: Final = "open_rupture"

LEVEL_COLUMNS: Final = (
    PATIENT,
    SCALE,
    N,
    FIRST_SESSION,
    LAST_SESSION,
    LEVEL,
    LEVEL_EB,
    LEVEL_EB_LOW,
    LEVEL_EB_HIGH,
    RELIABILITY,
    PROVISIONAL,
    WITHIN_SD,
    S_LEVEL,
    SLOPE,
    DETRENDED_LEVEL,
    RESIDUAL_SD,
    CEILING,
    LAST_SCORE,
    N_RUPTURES,
    N_REPAIRS,
    N_UNREPAIRED,
    N_DECLINES,
    OPEN_RUPTURE,
    DECLINE_STATE,
)

# analysis.events (one row per flag).
RUPTURE: Final = "rupture"
REPAIR: Final = "repair"
UNREPAIRED: Final = "unrepaired"
DECLINE: Final = "decline"
SUDDEN_GAIN: Final = "sudden_gain"
SUDDEN_LOSS: Final = "sudden_loss"
KINDS: Final = (RUPTURE, REPAIR, UNREPAIRED, DECLINE, SUDDEN_GAIN, SUDDEN_LOSS)
KIND_DTYPE: Final = pd.CategoricalDtype(list(KINDS), ordered=True)

KIND: Final = "kind"
MAGNITUDE: Final = "magnitude"
THRESHOLD: Final = "threshold"
ALARM: Final = "alarm"  # the event puts the patient on the caseload (the unit of alarm)
EXPLANATION: Final = "explanation"
RULE: Final = "rule"
RUPTURE_SESSION: Final = "rupture_session"
FROM_SESSION: Final = "from_session"
TO_SESSION: Final = "to_session"
K: Final = "k"
SEM: Final = "sem"
RC: Final = "rc"
POOLED_SD: Final = "pooled_sd"
MEAN_BEFORE: Final = "mean_before"
MEAN_AFTER: Final = "mean_after"
SD_WINDOW: Final = "sd_window"
T_CRIT: Final = "t_crit"

#: ``rule`` values: which branch of which rule raised the event.
RULE_BASELINE: Final = "baseline_k_sd"  # rupture: 3+ baseline sessions
RULE_PREVIOUS: Final = "previous_session"  # rupture: 1-2 prior sessions
RULE_BACK_IN_RANGE: Final = "back_within_s"  # repair
RULE_WINDOW_ENDED: Final = "window_ended"  # unrepaired
RULE_CUSUM: Final = "lower_cusum"  # decline
RULE_TANG_DERUBEIS: Final = "tang_derubeis"  # sudden gain / loss

EVENT_COLUMNS: Final = (
    PATIENT,
    SESSION,
    SCALE,
    KIND,
    ALARM,
    MAGNITUDE,
    THRESHOLD,
    EXPLANATION,
    RULE,
    T,
    SCORE,
    BASELINE,
    N_BASELINE,
    S_USED,
    K,
    SEM,
    RC,
    POOLED_SD,
    RUPTURE_SESSION,
    FROM_SESSION,
    TO_SESSION,
    CUSUM,
    SLOPE,
    MEAN_BEFORE,
    MEAN_AFTER,
    SD_WINDOW,
    T_CRIT,
)

# analysis.patterns (one row per patient).
PATTERN: Final = "pattern"
LABEL: Final = "label"
TREND: Final = "trend"
QUANTILE_LOW: Final = "level_q_low"
QUANTILE_HIGH: Final = "level_q_high"
CORRECTIVE_EXPERIENCE: Final = "corrective_experience"
CRISIS: Final = "crisis"
NO_PATTERN: Final = "none"
PATTERN_LABELS: Final = {
    CORRECTIVE_EXPERIENCE: "Possible corrective experience",
    CRISIS: "Possible crisis: explore with the patient",
    NO_PATTERN: "",
}
PATTERN_COLUMNS: Final = (
    PATIENT,
    PATTERN,
    LABEL,
    EXPLANATION,
    SCALE,
    N,
    LEVEL,
    QUANTILE_LOW,
    QUANTILE_HIGH,
    TREND,
    OPEN_RUPTURE,
)
