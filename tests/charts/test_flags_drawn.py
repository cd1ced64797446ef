"""Charts draw every flag of every scale: the subscale panels mark each scale's ruptures, repairs,
unrepaired ruptures, sudden changes and declines, and the trajectory the stored "alliance has
stayed low" flags, each with its hover text. Figures validated by plotly."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring import charts
from monitoring.analytics import columns as c
from tests.charts.test_charts import CASE_A, CASE_B, frames, known, plotly_valid, traces

LOW = pd.DataFrame(
    [
        {
            "session": 6,
            "scale": "total",
            "kind": "low_alliance",
            "score": None,
            "explanation": "The total alliance was below the clinic's cut-off of 3.5 for 3 sessions in a row.",
            "from_session": 4,
            "to_session": 6,
        }
    ]
)


def panel_markers(chart: charts.Chart, name: str) -> dict[str, dict]:
    return {t["xaxis"]: t for t in traces(chart).get(name, [])}


def test_each_subscale_panel_marks_its_rupture_and_that_it_was_not_repaired() -> None:
    f = frames(known(tuple(CASE_B)), "A")
    chart = plotly_valid(charts.subscales(sessions=f["sessions"], events=f["events"]))
    ruptures = panel_markers(chart, "Rupture")
    assert set(ruptures) == {"x", "x2", "x3", "x4"}  # goal, task, bond, goal and task agreement
    for axis, trace in ruptures.items():
        assert trace["x"] == [4.0] and trace["yaxis"] == "y" + axis[1:]
        assert trace["text"][0].startswith("<b>Rupture at session 4</b><br>")
    assert set(panel_markers(chart, "Not repaired")) == {"x", "x2", "x3", "x4"}
    loss = panel_markers(chart, "Sudden loss")["x2"]
    assert loss["x"] == [3.5] and "sessions 3 to 4" in loss["text"][0]
    # One legend entry per kind, toggling every panel.
    assert [t["showlegend"] for t in traces(chart)["Rupture"]] == [True, False, False, False]
    assert "Rupture (rupture at session" not in chart.rows[3][-1]
    assert chart.rows[3][-1].startswith("Goal agreement: rupture")
    assert (
        "Also flagged: rupture at session 4 (goal agreement, task agreement, bond and goal and task agreement); "
        in chart.summary
    )


def test_each_subscale_panel_marks_a_repair() -> None:
    f = frames(known(tuple(CASE_A)), "A")
    chart = plotly_valid(charts.subscales(sessions=f["sessions"], events=f["events"]))
    repairs = panel_markers(chart, "Repair")
    assert len(repairs) == 4 and all(t["x"] == [6.0] for t in repairs.values())
    assert "Repair at session 6" in repairs["x"]["text"][0]


def test_the_trajectory_draws_the_stored_low_alliance_flag_with_its_hover() -> None:
    f = frames(known(tuple(CASE_B)), "A")
    chart = plotly_valid(charts.trajectory(**f, low_alliance=LOW))
    (low,) = traces(chart)["Alliance stayed low"]
    assert low["x"] == [6.0] and low["y"] == [pytest.approx(CASE_B[5])]
    assert low["text"][0].startswith("<b>Alliance stayed low, sessions 4 to 6</b> (flagged at session 6)<br>")
    assert "Alliance stayed below the clinic's cut-off: sessions 4 to 6." in chart.summary
    assert "Alliance stayed low (sessions 4 to 6)" in chart.rows[5][-1]
    # Without them nothing changes; a subscale chart ignores a total-only flag but accepts it.
    assert "Alliance stayed low" not in traces(charts.trajectory(**f))
    sub = plotly_valid(charts.subscales(sessions=f["sessions"], events=f["events"], low_alliance=LOW))
    assert "Alliance stayed low" not in traces(sub)


def test_the_low_alliance_flags_alone_are_drawn_when_the_analysis_has_no_events() -> None:
    f = frames(known(tuple(CASE_B)), "A")
    chart = plotly_valid(
        charts.trajectory(
            sessions=f["sessions"], levels=f["levels"], events=f["events"].iloc[:0], low_alliance=LOW
        )
    )
    assert list(traces(chart)["Alliance stayed low"][0]["x"]) == [6.0]
    assert c.TOTAL == "total"


def test_the_charts_format_was_bumped_for_the_new_markers() -> None:
    assert charts.CHARTS_FORMAT >= 2
