"""monitoring.charts: analysis frames -> plotly figure dicts, summaries, tables, sparklines.

Plain functions on hand-built frames (the known cases of methods.md section 5) and on the
simulator; no database. Every figure a test builds is checked by plotly's own schema
(:func:`plotly_valid`, applied to every chart builder by an autouse fixture).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import pkgutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from monitoring import charts
from monitoring.analytics import Analysis, AnalysisConfig, analyse, known_case_clinic
from monitoring.analytics import columns as c
from monitoring.analytics.scoring import score_items_wide
from monitoring.analytics.simulate import simulate_cohort

CASE_A = [3.8, 3.9, 4.0, 4.0, 3.1, 3.9, 4.1, 4.1]  # V: rupture at 5, repair at 6
CASE_B = [4.2, 4.3, 4.2, 3.3, 3.4, 3.2, 3.3]  # rupture at 4, unrepaired at 7, sudden loss 3->4
CASE_C_TASK = [4.5, 4.4, 4.25, 4.0, 3.75, 3.5, 3.5, 3.25]  # declining task
CASE_D = [4.0, 4.1, 3.9, 4.0, 4.1, 4.0]  # stable
CASE_E = [3.0, 3.1, 2.9, 3.9, 4.0, 4.1]  # sudden gain 3->4
SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]


def one_patient(scores: list[float], *, patient: str = "A") -> pd.DataFrame:
    n = len(scores)
    return pd.DataFrame(
        {
            "patient": [patient] * n,
            "session": list(range(1, n + 1)),
            "goal": scores,
            "task": scores,
            "bond": scores,
        }
    )


@cache
def known(case: tuple[float, ...]) -> Analysis:
    return analyse(one_patient(list(case)), AnalysisConfig(clinic=known_case_clinic()))


@cache
def declining_task() -> Analysis:
    n = len(CASE_C_TASK)
    frame = pd.DataFrame(
        {
            "patient": "C",
            "session": list(range(1, n + 1)),
            "goal": [4.4, 4.5] * (n // 2),
            "task": CASE_C_TASK,
            "bond": [4.5, 4.4] * (n // 2),
        }
    )
    return analyse(frame, AnalysisConfig(clinic=known_case_clinic()))


@cache
def cohort() -> tuple[Analysis, pd.DataFrame]:
    """A small simulated clinic (courses of 1-16 sessions) and its therapist-rated totals."""
    sim = simulate_cohort(24, seed=11, sessions=(1, 16))
    return analyse(sim.scores), score_items_wide(sim.therapist_items)


def frames(analysis: Analysis, patient: Any) -> dict[str, pd.DataFrame]:
    return {
        "sessions": analysis.sessions[analysis.sessions[c.PATIENT] == patient],
        "levels": analysis.levels[analysis.levels[c.PATIENT] == patient],
        "events": analysis.events[analysis.events[c.PATIENT] == patient],
    }


def plotly_valid(chart: charts.Chart) -> charts.Chart:
    """``chart``, after plotly has built a Figure of it: plotly raises ValueError on a misspelled
    property or an invalid value (its schema is that of the vendored plotly.js, 4.1.1)."""
    go.Figure(data=chart.figure["data"], layout=chart.figure["layout"])
    return chart


def validating(build: Callable[..., charts.Chart]) -> Callable[..., charts.Chart]:
    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> charts.Chart:
        return plotly_valid(build(*args, **kwargs))

    return wrapper


#: Every public function of monitoring.charts that returns a Chart.
BUILDERS = sorted(
    name
    for name in charts.__all__
    if inspect.isfunction(getattr(charts, name))
    and get_type_hints(getattr(charts, name))["return"] is charts.Chart
)


@pytest.fixture(autouse=True)
def _plotly_checks_every_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chart a test builds through ``charts.<builder>`` passes plotly's validation."""
    for name in BUILDERS:
        monkeypatch.setattr(charts, name, validating(getattr(charts, name)))


def traces(chart: charts.Chart) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for trace in chart.figure["data"]:
        out.setdefault(trace["name"], []).append(trace)
    return out


def only(chart: charts.Chart, name: str) -> dict[str, Any]:
    found = traces(chart)[name]
    assert len(found) == 1
    return found[0]


def assert_plain_json(value: Any) -> None:
    """Only JSON types all the way down (no numpy scalars, no NaN)."""
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)
        if type(value) is float:
            assert math.isfinite(value)


def assert_valid(chart: charts.Chart) -> None:
    json.dumps(chart.figure, allow_nan=False)
    assert_plain_json(chart.figure)
    assert set(chart.figure) == {"data", "layout"}
    assert chart.summary and chart.summary.strip() == chart.summary
    assert all(trace.get("name") for trace in chart.figure["data"])
    assert all(len(row) == len(chart.columns) for row in chart.rows)
    assert all(isinstance(cell, str) for row in chart.rows for cell in row)
    layout = chart.figure["layout"]
    assert layout["autosize"] is True
    assert layout["font"]["family"] == "system-ui, sans-serif"


def all_charts(f: dict[str, pd.DataFrame], k: float = 2.5) -> list[charts.Chart]:
    return [
        charts.trajectory(**f),
        charts.deviations(sessions=f["sessions"], events=f["events"], k=k),
        charts.subscales(sessions=f["sessions"], events=f["events"]),
    ]


# Trajectory ---------------------------------------------------------------------------------


def test_it_marks_the_rupture_and_repair_of_a_planted_v() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_A)), "A"))
    assert_valid(chart)
    names = traces(chart)
    assert set(names) == {"Total", "Long-run level 3.9", "Rupture", "Repair"}
    total = only(chart, "Total")
    assert total["x"] == list(range(1, 9))
    assert total["y"] == pytest.approx(CASE_A)
    rupture, repair = only(chart, "Rupture"), only(chart, "Repair")
    assert (rupture["x"], rupture["y"]) == ([5.0], [pytest.approx(3.1)])
    assert (repair["x"], repair["y"]) == ([6.0], [pytest.approx(3.9)])
    assert rupture["marker"]["symbol"] != repair["marker"]["symbol"]
    assert "Rupture at session 5" in rupture["text"][0]
    assert "below this patient" in rupture["text"][0]  # the plain explanation in the hover
    level = only(chart, "Long-run level 3.9")
    assert level["y"] == pytest.approx([np.mean(CASE_A)] * 8)


def test_its_axes_are_sessions_and_a_fixed_one_to_five_scale() -> None:
    layout = charts.trajectory(**frames(known(tuple(CASE_A)), "A")).figure["layout"]
    assert layout["xaxis"]["title"]["text"] == "Session"
    assert layout["yaxis"]["title"]["text"] == "Alliance (1-5)"
    assert layout["yaxis"]["tickvals"] == [1, 2, 3, 4, 5]
    assert layout["yaxis"]["range"][0] < 1 and 5 < layout["yaxis"]["range"][1] < 5.5
    assert layout["yaxis"]["fixedrange"] is True
    assert layout["height"] == charts.HEIGHT


def test_its_summary_says_sessions_level_latest_and_the_rupture_story() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_A)), "A"))
    assert chart.summary == (
        "8 sessions. Long-run level 3.9 (mean of all sessions). Latest total 4.1, close to usual. "
        "One rupture, at session 5, repaired at session 6."
    )
    assert chart.columns == ["Session", "Total", "Flags"]
    assert chart.rows[4] == ["5", "3.10", "Rupture"]
    assert chart.rows[5] == ["6", "3.90", "Repair (rupture at session 5)"]
    assert chart.rows[0] == ["1", "3.80", ""]


def test_it_tells_an_unrepaired_rupture_and_a_sudden_loss() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_B)), "A"))
    assert_valid(chart)
    assert only(chart, "Not repaired")["x"] == [7.0]
    loss = only(chart, "Sudden loss")
    assert loss["x"] == [3.5]  # on the middle of the jump from session 3 to 4
    assert loss["y"] == [pytest.approx((4.2 + 3.3) / 2)]
    assert "sessions 3 to 4" in loss["text"][0] and "flagged at session 6" in loss["text"][0]
    assert "One rupture, at session 4, not repaired by session 7." in chart.summary
    assert "Sudden loss between sessions 3 and 4." in chart.summary
    # judged against the level before it (as the flags are), not the person mean (3.7) that
    # already mixes both regimes and would call 3.3 "close to usual"
    assert "Long-run level 3.7 (mean of all sessions). Latest total 3.3, well below usual." in chart.summary


def test_a_sudden_gain_sits_on_its_jump() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_E)), "A"))
    gain = only(chart, "Sudden gain")
    assert gain["x"] == [3.5] and gain["y"] == [pytest.approx(3.4)]
    assert gain["marker"]["symbol"] == "triangle-up"
    assert "No ruptures. Sudden gain between sessions 3 and 4." in chart.summary


def test_a_stable_patient_has_no_flag_traces() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_D)), "A"))
    assert set(traces(chart)) == {"Total", "Long-run level 4.0"}
    assert chart.summary.endswith("No ruptures or other flags.")


def test_a_provisional_level_gets_an_uncertainty_band() -> None:
    # Between-patient variance small against session noise: the EB weight stays low for long.
    clinic = known_case_clinic(pooled_within_sd=0.5, tau2=0.05)
    analysis = analyse(one_patient([3.8, 4.2, 4.0]), AnalysisConfig(clinic=clinic))
    f = frames(analysis, "A")
    level = f["levels"][f["levels"][c.SCALE] == c.TOTAL].iloc[0]
    assert level[c.PROVISIONAL]
    chart = charts.trajectory(**f)
    assert_valid(chart)
    band = only(chart, "Level uncertainty")
    assert band["fill"] == "toself" and band["hoverinfo"] == "skip"
    last_s_used = f["sessions"][f["sessions"][c.SCALE] == c.TOTAL][c.S_USED].iloc[-1]
    half = 1.96 * max(level[c.S_LEVEL], last_s_used) / math.sqrt(3)
    assert min(band["y"]) == pytest.approx(4.0 - half, abs=1e-4)
    assert max(band["y"]) == pytest.approx(4.0 + half, abs=1e-4)
    # lam = tau2 / (tau2 + sigma2 / n) reaches 0.8 at n = 4 * sigma2 / tau2 = 20
    assert "Long-run level 4.0 (mean of all sessions) (provisional until about 20 sessions)." in chart.summary
    assert "provisional" in only(chart, "Long-run level 4.0")["text"][0]


def test_a_ceiling_rater_is_named_as_such() -> None:
    chart = charts.trajectory(**frames(known((5.0,) * 6), "A"))
    assert "Every answer so far is at the top of the scale" in chart.summary


def test_a_settled_level_has_no_band() -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_A)), "A"))
    assert "Level uncertainty" not in traces(chart)
    assert "provisional" not in chart.summary


def test_session_dates_go_into_the_hover_and_the_table() -> None:
    dates = {s: date(2025, 1, 6) + timedelta(weeks=s - 1) for s in range(1, 9)}
    chart = charts.trajectory(**frames(known(tuple(CASE_A)), "A"), session_dates=dates)
    assert chart.columns == ["Session", "Date", "Total", "Flags"]
    assert chart.rows[0][:2] == ["1", "6 Jan 2025"]
    assert "6 Jan 2025" in only(chart, "Total")["text"][0]


def test_explanations_are_escaped_in_the_hover() -> None:
    f = frames(known(tuple(CASE_A)), "A")
    events = f["events"].copy()
    events[c.EXPLANATION] = "<img src=x onerror=alert(1)> & more"
    chart = charts.trajectory(sessions=f["sessions"], levels=f["levels"], events=events)
    text = only(chart, "Rupture")["text"][0]
    assert "<img" not in text and "&lt;img" in text and "&amp; more" in text


# Deviations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2.5, 2.0, 1.0])
def test_the_rupture_threshold_line_sits_at_minus_k(k: float) -> None:
    chart = charts.deviations(sessions=known(tuple(CASE_A)).sessions, events=known(tuple(CASE_A)).events, k=k)
    assert_valid(chart)
    (line,) = chart.figure["layout"]["shapes"]
    assert line["type"] == "line" and line["y0"] == line["y1"] == -k
    assert (line["xref"], line["x0"], line["x1"]) == ("paper", 0, 1)
    assert line["line"]["dash"] == "dash"
    (label,) = chart.figure["layout"]["annotations"]
    assert label["text"].startswith("Rupture threshold") and label["y"] == -k
    assert chart.figure["layout"]["yaxis"]["range"][0] < -k


def test_deviation_bars_are_the_prospective_deviation_in_spreads() -> None:
    analysis = known(tuple(CASE_A))
    chart = charts.deviations(sessions=analysis.sessions, events=analysis.events, k=2.5)
    total = analysis.sessions[analysis.sessions[c.SCALE] == c.TOTAL].set_index(c.SESSION)
    expected = (total[c.SCORE] - total[c.BASELINE]) / total[c.S_USED]
    bars = [t for t in chart.figure["data"] if t["type"] == "bar"]
    drawn = {x: y for t in bars for x, y in zip(t["x"], t["y"], strict=True)}
    assert sorted(drawn) == list(range(2, 9))  # session 1 has no baseline
    for session, value in drawn.items():
        assert value == pytest.approx(expected[session], abs=1e-4)
    below = only(chart, "Below rupture threshold")
    assert below["x"] == [5] and below["y"][0] < -2.5
    assert only(chart, "Too few sessions for threshold")["x"] == [2, 3]
    assert only(chart, "Rupture")["x"] == [5]
    assert below["marker"]["color"] != only(chart, "Deviation")["marker"]["color"]


def test_deviation_summary_and_table_give_the_numbers() -> None:
    analysis = known(tuple(CASE_A))
    chart = charts.deviations(sessions=analysis.sessions, events=analysis.events, k=2.5)
    dev5 = next(
        y
        for t in chart.figure["data"]
        if t["type"] == "bar"
        for x, y in zip(t["x"], t["y"], strict=True)
        if x == 5
    )
    assert (
        f"1 session fell below the rupture threshold (2.5 units below baseline): session 5, {-dev5:.1f} units below."
        in chart.summary
    )
    row5 = chart.rows[4]
    assert row5[0] == "5" and row5[1] == "3.10" and row5[-1] == "Below rupture threshold"
    assert row5[4] == f"{dev5:+.2f}".replace("-", charts.MINUS)
    assert chart.rows[0][-1] == "First session: no baseline yet"
    stable = charts.deviations(
        sessions=known(tuple(CASE_D)).sessions, events=known(tuple(CASE_D)).events, k=2.5
    )
    assert "No session fell below the rupture threshold" in stable.summary
    assert "Below rupture threshold" not in traces(stable)


# Subscales ----------------------------------------------------------------------------------


def test_subscales_draw_four_panels_with_their_levels() -> None:
    analysis = known(tuple(CASE_A))
    chart = charts.subscales(sessions=analysis.sessions, events=analysis.events)
    assert_valid(chart)
    layout = chart.figure["layout"]
    titles = [a["text"] for a in layout["annotations"]]
    assert titles == [f"<b>{c.SCALE_LABELS[s]}</b>" for s in (c.GOAL, c.TASK, c.BOND, c.AGREEMENT)]
    for axis in ("xaxis", "xaxis2", "xaxis3", "xaxis4", "yaxis", "yaxis2", "yaxis3", "yaxis4"):
        assert axis in layout
    assert layout["height"] == charts.HEIGHT_PANELS
    scores = traces(chart)["Score"]
    assert [t["yaxis"] for t in scores] == ["y", "y2", "y3", "y4"]
    assert [t["showlegend"] for t in scores] == [True, False, False, False]
    assert len(traces(chart)["Long-run level"]) == 4
    assert chart.columns == [
        "Session",
        "Goal agreement",
        "Task agreement",
        "Bond",
        "Goal and task agreement",
        "Flags",
    ]
    assert len(chart.rows) == 8
    assert "No declining trend in any subscale." in chart.summary


def test_a_declining_task_is_marked_with_its_run_up_shaded() -> None:
    analysis = declining_task()
    chart = charts.subscales(sessions=analysis.sessions, events=analysis.events)
    assert_valid(chart)
    decline = {t["xaxis"]: t for t in traces(chart)["Declining trend"]}
    assert decline["x2"]["x"] == [6] and decline["x2"]["y"] == [pytest.approx(3.5)]  # task panel
    shapes = {s["xref"]: s for s in chart.figure["layout"]["shapes"]}
    task = shapes["x2"]
    assert task["yref"] == "y2 domain"
    assert (task["x0"], task["x1"]) == (3.5, 6.5)  # CUSUM positive from session 4
    assert "task agreement (flagged at session 6, building since session 4)" in chart.summary
    assert chart.rows[5][-1].startswith("Task agreement: declining trend")


# Raters -------------------------------------------------------------------------------------


def rated(totals: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"session": range(1, len(totals) + 1), "total": totals})


def test_raters_show_both_totals_and_the_difference() -> None:
    chart = charts.raters(patient=rated([4.0, 4.2, 4.4]), therapist=rated([3.7, 3.9, 4.1]))
    assert_valid(chart)
    assert set(traces(chart)) == {"Patient", "Therapist", "Difference"}
    diff = only(chart, "Difference")
    assert diff["yaxis"] == "y2" and diff["y"] == pytest.approx([0.3, 0.3, 0.3])
    assert "The therapist rates the alliance 0.3 points lower than the patient on average." in chart.summary
    assert chart.rows[0] == ["1", "4.00", "3.70", "+0.30"]


def test_raters_say_when_the_therapist_rates_higher_or_the_same() -> None:
    higher = charts.raters(patient=rated([3.5, 3.6]), therapist=rated([4.0, 4.1]))
    assert "The therapist rates the alliance 0.5 points higher than the patient on average." in higher.summary
    same = charts.raters(patient=rated([4.0, 4.1]), therapist=rated([4.02, 4.08]))
    assert "about the same" in same.summary


def test_raters_cope_with_missing_sessions_and_no_therapist() -> None:
    patient = rated([4.0, 4.2, 4.4, 4.1])
    therapist = pd.DataFrame({"session": [2, 4], "total": [3.8, 3.9]})
    chart = charts.raters(patient=patient, therapist=therapist)
    assert_valid(chart)
    assert only(chart, "Difference")["x"] == [2, 4]
    assert chart.rows[0] == ["1", "4.00", "\u2013", "\u2013"]
    assert "both rated 2 sessions" in chart.summary
    alone = charts.raters(patient=patient, therapist=pd.DataFrame())
    assert_valid(alone)
    assert set(traces(alone)) == {"Patient"} and alone.summary.startswith("No therapist ratings yet")


# Clinic report ------------------------------------------------------------------------------


def test_completion_by_month_shows_held_and_completed_with_the_rate() -> None:
    chart = charts.completion_by_month(
        months=["2026-01", "2026-02", "2026-03"], held=[10, 0, 8], completed=[7, 0, 8]
    )
    assert_valid(chart)
    held, done = only(chart, "Sessions held"), only(chart, "Forms completed")
    assert held["x"] == done["x"] == ["Jan 26", "Feb 26", "Mar 26"]
    assert (held["y"], done["y"]) == ([10, 0, 8], [7, 0, 8])
    assert done["customdata"] == [70, None, 100]
    assert chart.rows[1] == ["2026-02", "0", "0", "\u2013"]
    assert chart.summary == (
        "15 of 18 held sessions have the patient's form (83%) over 3 months; lowest month Jan 26 at 70%."
    )
    empty = charts.completion_by_month(months=[], held=[], completed=[])
    assert_valid(empty)
    assert empty.figure["data"] == [] and empty.summary == "No sessions in this period."


def test_level_distribution_counts_patients_per_bin() -> None:
    chart = charts.level_distribution(levels=[3.1, 4.2, 4.25, float("nan"), 2.0, 5.0, 1.0])
    assert_valid(chart)
    bars = only(chart, "Patients")
    assert len(bars["x"]) == 16 and sum(bars["y"]) == 6  # NaN skipped
    assert chart.rows[0] == ["1.00", "1.25", "1"]
    assert chart.summary == "6 patients. Median long-run level 3.7; the middle half between 2.3 and 4.2."
    empty = charts.level_distribution(levels=[])
    assert_valid(empty)
    assert empty.figure["data"] == [] and empty.summary == "No patient has answers in this period."


# Simulated cohort and edge cases ------------------------------------------------------------


def test_every_patient_of_a_simulated_clinic_gets_valid_charts() -> None:
    analysis, therapist = cohort()
    patients = analysis.levels[c.PATIENT].unique()
    assert len(patients) == 24
    for patient in patients:
        f = frames(analysis, patient)
        for chart in all_charts(f, k=analysis.config.k):
            assert_valid(chart)
        # one marker per total-scale event of each kind
        trajectory = charts.trajectory(**f)
        total_events = f["events"][f["events"][c.SCALE] == c.TOTAL]
        for kind, (name, *_rest) in charts.MARKERS.items():
            expected = int((total_events[c.KIND] == kind).sum())
            drawn = sum(len(t["x"]) for t in traces(trajectory).get(name, []))
            assert drawn == expected, (patient, kind)
        rows = f["sessions"][f["sessions"][c.SCALE] == c.TOTAL]
        patient_totals = rows[[c.SESSION, c.SCORE]].rename(columns={c.SCORE: c.TOTAL})
        assert_valid(
            charts.raters(patient=patient_totals, therapist=therapist[therapist[c.PATIENT] == patient])
        )


@pytest.mark.parametrize("empty", [pd.DataFrame(), "filtered"])
def test_no_sessions_yet_gives_a_chart_that_says_so(empty: object) -> None:
    analysis = known(tuple(CASE_A))
    if isinstance(empty, str):  # the real frames, filtered to a patient with no answers
        f = frames(analysis, "nobody")
    else:
        f = {"sessions": pd.DataFrame(), "levels": pd.DataFrame(), "events": pd.DataFrame()}
    built = [*all_charts(f), charts.raters(patient=f["sessions"], therapist=pd.DataFrame())]
    for chart in built:
        assert_valid(chart)
        assert chart.figure["data"] == [] and chart.rows == []
        assert chart.summary.startswith("No answers yet")
    assert built[1].figure["layout"]["shapes"][0]["y0"] == -2.5


def test_one_session_gives_a_chart_and_a_helpful_summary() -> None:
    f = frames(analyse(one_patient([4.2]), AnalysisConfig(clinic=known_case_clinic())), "A")
    trajectory, deviation, subscale = all_charts(f)
    for chart in (trajectory, deviation, subscale):
        assert_valid(chart)
    assert set(traces(trajectory)) == {"Total"}
    assert trajectory.summary.startswith("1 session so far, total 4.2.")
    assert trajectory.rows == [["1", "4.20", ""]]
    assert [t for t in deviation.figure["data"] if t["type"] == "bar"] == []
    assert "no deviations to show yet" in deviation.summary
    assert subscale.summary.startswith("1 session.")


def test_frames_of_several_patients_are_refused() -> None:
    analysis, _ = cohort()
    with pytest.raises(ValueError, match="one patient"):
        charts.trajectory(sessions=analysis.sessions, levels=analysis.levels, events=analysis.events)


def test_charts_and_its_modules_import_no_django() -> None:
    """As tests/analytics/test_import.py: a fresh interpreter imports the package and every module
    of it, and neither Django nor plotly (the figures are plain dicts) is loaded."""
    modules = [
        "monitoring.charts",
        *(f"monitoring.charts.{m.name}" for m in pkgutil.iter_modules(charts.__path__)),
    ]
    assert {"monitoring.charts._style", "monitoring.charts.trajectory", "monitoring.charts.clinic"} <= set(
        modules
    )
    code = (
        f"import sys; import {', '.join(modules)}; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'plotly')); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == ""


# Plotly validation --------------------------------------------------------------------------


def test_every_chart_builder_is_validated_by_plotly() -> None:
    assert BUILDERS == [
        "completion_by_month",
        "deviations",
        "level_distribution",
        "raters",
        "review_alliance",
        "review_symptoms",
        "subscales",
        "symptoms",
        "trajectory",
    ]
    assert all(getattr(charts, name).__wrapped__ for name in BUILDERS)  # the autouse fixture


def _with(chart: charts.Chart, figure: dict[str, Any]) -> charts.Chart:
    return dataclasses.replace(chart, figure=figure)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda f: f["data"][0].update(colour="red"),  # misspelled trace property
        lambda f: f["data"][0]["line"].update(dahs="dash"),  # misspelled nested property
        lambda f: f["layout"]["xaxis"].update(tickvalz=[1, 2]),  # misspelled axis property
        lambda f: f["layout"].update(hovermode="x unifed"),  # invalid value
        lambda f: f["data"][0]["marker"].update(symbol="triangle-downn"),  # invalid marker symbol
    ],
)
def test_plotly_validation_catches_a_misspelled_property(spoil: Callable[[dict[str, Any]], None]) -> None:
    chart = charts.trajectory(**frames(known(tuple(CASE_A)), "A"))  # valid: checked by the fixture
    figure = json.loads(json.dumps(chart.figure))
    total = next(i for i, trace in enumerate(figure["data"]) if trace["name"] == "Total")
    figure["data"].insert(0, figure["data"].pop(total))
    spoil(figure)
    broken = _with(chart, figure)
    with pytest.raises(ValueError, match="Invalid"):
        plotly_valid(broken)
    with pytest.raises(ValueError, match="Invalid"):
        validating(lambda: broken)()  # what the autouse fixture wraps every builder in


# Sparkline ----------------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 -- our own output, parsed to prove it is well-formed
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert {child.tag.removeprefix(SVG) for child in root} <= {"line", "polyline", "circle"}
    return root


def test_sparkline_is_a_small_labelled_svg() -> None:
    root = parse(charts.sparkline_svg(values=[4.1, 4.0, 3.9, 4.2, 3.8, 3.6, 3.4, 3.2], level=3.9))
    assert root.get("aria-label") == "Last 8 totals, from 4.1 to 3.2; usual level 3.9"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("96", "24", "0 0 96 24")
    tags = [child.tag.removeprefix(SVG) for child in root]
    assert tags == ["line", "polyline", "circle"]
    points = [tuple(map(float, p.split(","))) for p in root.find(f"{SVG}polyline").get("points").split()]
    assert len(points) == 8
    assert all(0 <= x <= 96 and 0 <= y <= 24 for x, y in points)
    assert points[0][1] < points[-1][1]  # 4.1 sits higher than 3.2 (SVG y grows downwards)
    dot = root.find(f"{SVG}circle")
    assert (float(dot.get("cx")), float(dot.get("cy"))) == points[-1]


def test_sparkline_keeps_the_last_twelve_and_skips_missing_values() -> None:
    values = [3.0] * 5 + [4.0, float("nan"), None] + [4.5] * 11  # 16 real values
    root = parse(charts.sparkline_svg(values=values))  # type: ignore[arg-type]
    assert root.get("aria-label") == "Last 12 totals, from 4.0 to 4.5"
    assert len(root.find(f"{SVG}polyline").get("points").split()) == 12
    assert root.find(f"{SVG}line") is None  # no level given


def test_sparkline_copes_with_no_or_one_value_and_odd_sizes() -> None:
    empty = parse(charts.sparkline_svg(values=[], level=4.0))
    assert empty.get("aria-label") == "No answers yet" and list(empty) == []
    one = parse(charts.sparkline_svg(values=[4.2], level=float("nan"), width=60, height=20))
    assert one.get("aria-label") == "One total: 4.2"
    assert [child.tag.removeprefix(SVG) for child in one] == ["circle"]
    clamped = parse(charts.sparkline_svg(values=[7.0, -3.0], width=50, height=10))
    ys = [float(p.split(",")[1]) for p in clamped.find(f"{SVG}polyline").get("points").split()]
    assert len(ys) == 2 and all(0 <= y <= 10 for y in ys)


# Symptoms beside the alliance ---------------------------------------------------------------


def _symptom_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from monitoring.analytics.outcomes import GAD7, PHQ9

    sessions = list(range(1, 9))
    phq = [18, 17, 15, 16, 20, 21, 22, 22]
    gad = [12, 12, 11, 10, 13, 14, 14, 15]
    scores = pd.DataFrame(
        [(s, "phq9", v) for s, v in zip(sessions, phq, strict=True)]
        + [(s, "gad7", v) for s, v in zip(sessions, gad, strict=True)],
        columns=["session", "measure", "score"],
    )
    expected = pd.DataFrame(
        [(s, "phq9", 18 - 2 * np.log(s), 18 - 2 * np.log(s) + 8) for s in sessions],
        columns=["session", "measure", "expected", "upper"],
    )
    alliance = pd.DataFrame({"session": sessions, "score": [4.2, 4.1, 4.3, 4.2, 3.0, 3.1, 3.0, 3.2]})
    assert PHQ9.code == "phq9" and GAD7.code == "gad7"
    return scores, expected, alliance


def test_symptoms_chart_puts_alliance_and_symptoms_on_one_timeline() -> None:
    from monitoring.analytics.outcomes import GAD7, PHQ9

    scores, expected, alliance = _symptom_frames()
    chart = charts.symptoms(
        scores=scores,
        measures={"phq9": PHQ9, "gad7": GAD7},
        expected=expected,
        alliance=alliance,
        level=4.0,
        ruptures=[5],
    )
    names = set(traces(chart))
    assert {"Alliance", "PHQ-9", "GAD-7", "PHQ-9 expected", "Long-run alliance level 4.0"} <= names
    assert only(chart, "PHQ-9")["yaxis"] == "y2" and only(chart, "Alliance")["yaxis"] == "y"
    rupture_lines = [s for s in chart.figure["layout"]["shapes"] if s["type"] == "line" and s.get("x0") == 5]
    assert len(rupture_lines) == 1 and rupture_lines[0]["yref"] == "paper"  # through both panels
    bands = [a["text"] for a in chart.figure["layout"]["annotations"]]
    assert bands == ["minimal", "mild", "moderate", "moderately severe", "severe", "PHQ-9 cut-off 10"]
    assert "PHQ-9 from 18 (moderately severe) at session 1 to 22 (severe) at session 8: up 4" in chart.summary
    assert "not on track" in chart.summary and "Ruptures at session 5" in chart.summary
    assert chart.columns == ["Session", "PHQ-9", "GAD-7", "Alliance"]
    assert chart.rows[4] == ["5", "20", "13", "3.0"]


def test_symptoms_chart_without_answers_says_so() -> None:
    from monitoring.analytics.outcomes import PHQ9

    chart = charts.symptoms(
        scores=pd.DataFrame(columns=["session", "measure", "score"]), measures={"phq9": PHQ9}
    )
    assert chart.rows == [] and "No symptom answers yet" in chart.summary


# Looking back together (the patient's own course, no flags) ---------------------------------

JARGON = (
    "rupture",
    "repair",
    "flag",
    "threshold",
    "baseline",
    "usual level",
    "deviation",
    "decline",
    "clinic",
)


def test_review_alliance_speaks_the_patients_words_and_shows_no_flags() -> None:
    f = frames(known(tuple(CASE_B)), "A")
    dates = {n: date(2026, 9, 1) + timedelta(days=7 * (n - 1)) for n in range(1, len(CASE_B) + 1)}
    chart = charts.review_alliance(sessions=f["sessions"], session_dates=dates)
    assert_valid(chart)
    assert list(traces(chart)) == [
        "All together",
        "What we are working towards",
        "How we are working on it",
        "How we get on",
    ]
    assert only(chart, "All together")["visible"] is True
    assert only(chart, "How we get on")["visible"] == "legendonly"
    assert only(chart, "All together")["y"] == [round(v, 2) for v in CASE_B]
    axis = chart.figure["layout"]["yaxis"]
    assert axis["ticktext"] == ["1 Seldom", "2 Sometimes", "3 Fairly often", "4 Very often", "5 Always"]
    assert "shapes" not in chart.figure["layout"]  # no threshold or level lines
    assert chart.summary.startswith("You answered after 7 sessions, from 1 Sep 2026 to 13 Oct 2026.")
    assert (
        "your answers were highest at session 2 on 8 Sep 2026 (4.3) and lowest at session 6 on 6 Oct 2026 "
        "(3.2); after the last one, 3.3." in chart.summary
    )
    assert not any(word in chart.summary.lower() for word in JARGON)
    assert chart.rows[0][:2] == ["1", f"{CASE_B[0]:.1f}"] and len(chart.rows) == len(CASE_B)


def test_review_symptoms_says_which_way_is_better_and_what_counts_as_a_real_change() -> None:
    from monitoring.analytics.outcomes import GAD7, PHQ9

    scores = pd.DataFrame(
        [(1, "phq9", 20.0), (4, "phq9", 15.0), (8, "phq9", 11.0), (1, "gad7", 9.0), (8, "gad7", 7.0)],
        columns=["session", "measure", "score"],
    )
    chart = charts.review_symptoms(scores=scores, measures={"phq9": PHQ9, "gad7": GAD7})
    assert_valid(chart)
    assert list(traces(chart)) == ["Low mood (PHQ-9)", "Worry and anxiety (GAD-7)"]
    cutoffs = sorted(s["y0"] for s in chart.figure["layout"]["shapes"])
    assert cutoffs == [GAD7.cutoff, PHQ9.cutoff]
    assert (
        "Low mood (PHQ-9) went down from 20 at session 1 to 11 at session 8: a change of 9 (a change of 6 or more "
        "is more than ups and downs from week to week can explain)" in chart.summary
    )
    labels = [a["text"] for a in chart.figure["layout"]["annotations"]]
    assert labels == ["PHQ-9 10", "GAD-7 8"]
    assert (
        "Worry and anxiety (GAD-7) was 9 at session 1 and 7 at session 8: less than 4 points apart"
        in chart.summary
    )
    assert chart.summary.count("Lower is better") == 2
    assert not any(word in chart.summary.lower() for word in JARGON)
    assert chart.columns == ["Session", "PHQ-9", "GAD-7"] and chart.rows[1] == ["4", "15", "\u2013"]


def test_review_charts_without_answers_say_so() -> None:
    from monitoring.analytics.outcomes import PHQ9

    empty = charts.review_alliance(sessions=pd.DataFrame(columns=["patient", "scale", "session", "score"]))
    assert empty.rows == [] and "No answers yet" in empty.summary
    none = charts.review_symptoms(
        scores=pd.DataFrame(columns=["session", "measure", "score"]), measures={"phq9": PHQ9}
    )
    assert none.rows == [] and "No questionnaires" in none.summary
