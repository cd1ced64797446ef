"""The two raters' chart gives the patient-therapist difference per session and per scale
(issue 16, item 8): the raters may part on one subscale only."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from monitoring import charts


def test_the_table_gives_the_difference_per_scale():
    patient = pd.DataFrame(
        {"session": [1, 2], "goal": [4.0, 4.0], "task": [4.0, 2.5], "bond": [4.0, 4.0], "total": [4.0, 3.5]}
    )
    therapist = pd.DataFrame(
        {
            "session": [1, 2],
            "goal": [4.0, 4.0],
            "task": [4.25, 4.25],
            "bond": [4.0, 4.5],
            "total": [4.08, 4.25],
        }
    )
    chart = charts.raters(patient=patient, therapist=therapist)
    go.Figure(chart.figure)
    assert chart.columns[-3:] == [
        "Goal agreement: difference",
        "Task agreement: difference",
        "Bond: difference",
    ]
    assert chart.rows[1][-3:] == ["0.00", "\u22121.75", "\u22120.50"]  # typographic minus


def test_totals_only_give_no_subscale_columns():
    chart = charts.raters(
        patient=pd.DataFrame({"session": [1], "total": [4.0]}),
        therapist=pd.DataFrame({"session": [1], "total": [4.5]}),
    )
    assert len(chart.columns) == 4
