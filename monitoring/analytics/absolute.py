"""An absolute signal beside the relative flags: a total alliance that has stayed below a
clinic-set cut-off for a stated number of consecutive sessions (docs/methods.md, section 4.9).

The relative rules compare a patient with their own usual level, so a patient whose alliance has
been low all along, or whose low level has become their new usual after an unrepaired rupture,
raises nothing more. Every anchor instrument has an absolute cut-off next to its relative
signals (the SRS's 36 of 40 in PCOMS: Duncan et al. 2003; Miller et al. 2006), and a weak
alliance predicts dropout and poorer outcome across treatments (Flückiger et al. 2018).

One event per run of low sessions, at the session where the run reaches ``sessions``: a run
ends at a session at or above the cut-off, so the signal is raised again only after the alliance
was above it. Prospective: an event uses only the scores up to its session. Pure pandas,
vectorised over all patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.analytics.columns import PATIENT, SCALE, SCORE, SESSION, TOTAL

LOW_ALLIANCE = "low_alliance"
RULE_BELOW_CUTOFF = "below_cutoff"

#: The clinic setting's default and bounds (total alliance on the 1-5 scale; sessions in a row).
DEFAULT_CUTOFF = 2.5
CUTOFF_BOUNDS = (1.5, 4.0)
DEFAULT_SESSIONS = 3
SESSIONS_BOUNDS = (2, 10)

COLUMNS = (
    PATIENT,
    SESSION,
    SCALE,
    "kind",
    "rule",
    "alarm",
    SCORE,
    "magnitude",
    "threshold",
    "cutoff",
    "run_length",
    "from_session",
    "to_session",
    "explanation",
)


def detect_low_alliance(sessions: pd.DataFrame, *, cutoff: float, run: int) -> pd.DataFrame:
    """Events where the total stayed below ``cutoff`` for ``run`` sessions in a row.

    ``sessions`` is ``analysis.sessions`` (or any frame with patient, session, scale, score).
    Sessions without a total (not all three subscales answered) are skipped, neither breaking
    nor extending a run. Columns: ``COLUMNS``; ``threshold`` is the cut-off (the score the rule
    compares with), ``magnitude`` how far the last session is below it, ``from_session`` the
    run's first session.
    """
    total = sessions[(sessions[SCALE] == TOTAL) & sessions[SCORE].notna()][[PATIENT, SESSION, SCORE]]
    total = total.sort_values([PATIENT, SESSION], kind="stable")
    if total.empty or run < 1:
        return pd.DataFrame(columns=list(COLUMNS))
    low = (total[SCORE].to_numpy(dtype=float) < cutoff).astype(np.int64)
    patient = total[PATIENT].to_numpy()
    # A run id per patient that changes at every session at or above the cut-off.
    run_id = pd.Series(1 - low).groupby(patient).cumsum().to_numpy()
    position = pd.Series(low).groupby([patient, run_id]).cumsum().to_numpy()
    hit = (low == 1) & (position == run)
    first = total[SESSION].to_numpy()
    start = pd.Series(np.where(low == 1, first, np.iinfo(np.int64).max)).groupby([patient, run_id]).cummin()
    events = total[hit].copy()
    events["from_session"] = start.to_numpy()[hit]
    events[SCALE] = TOTAL
    events["kind"] = LOW_ALLIANCE
    events["rule"] = RULE_BELOW_CUTOFF
    events["alarm"] = True
    events["magnitude"] = cutoff - events[SCORE]
    events["threshold"] = float(cutoff)
    events["cutoff"] = float(cutoff)
    events["run_length"] = int(run)
    events["to_session"] = events[SESSION]
    events["explanation"] = [
        f"Total alliance has been below the clinic's cut-off of {cutoff:.1f} for {run} sessions in a "
        f"row (sessions {int(a)} to {int(b)}; now {s:.1f})."
        for a, b, s in zip(events["from_session"], events[SESSION], events[SCORE], strict=True)
    ]
    return events[list(COLUMNS)].reset_index(drop=True)
