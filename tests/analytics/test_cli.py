"""python -m monitoring.analytics IN.csv --out DIR"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from monitoring.analytics.__main__ import main
from monitoring.analytics.simulate import simulate_cohort


@pytest.fixture
def scores_csv(tmp_path: Path) -> Path:
    path = tmp_path / "scores.csv"
    simulate_cohort(30, seed=1).scores.drop(columns=["scenario"]).to_csv(path, index=False)
    return path


def test_it_writes_the_result_files(
    scores_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(scores_csv), "--out", str(out), "--retrospective"]) == 0
    for name in ("sessions.csv", "levels.csv", "events.csv", "patterns.csv", "summary.csv", "clinic.json"):
        assert (out / name).exists(), name
    events = pd.read_csv(out / "events.csv")
    assert {"patient", "session", "scale", "kind", "magnitude", "threshold", "explanation"} <= set(
        events.columns
    )
    assert "30 patients" in capsys.readouterr().out


def test_it_reuses_stored_clinic_values_and_presets(scores_csv: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    main([str(scores_csv), "--out", str(first), "--retrospective"])
    second = tmp_path / "second"
    assert (
        main(
            [
                str(scores_csv),
                "--out",
                str(second),
                "--clinic",
                str(first / "clinic.json"),
                "--preset",
                "strict",
            ]
        )
        == 0
    )
    assert json.loads((second / "clinic.json").read_text()) == json.loads((first / "clinic.json").read_text())
    assert len(pd.read_csv(second / "events.csv")) <= len(pd.read_csv(first / "events.csv"))


def test_it_scores_item_level_files(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    simulate_cohort(5, seed=2).items.to_csv(path, index=False)
    assert main([str(path), "--out", str(tmp_path / "o"), "--retrospective"]) == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["bond"]), "lacks column(s) ['bond']"),
        (
            lambda f: f.assign(task=f["task"].where(f.index != 3, 7.0)),
            "task must be between 1 and 5 (CSV lines 5)",
        ),
        (lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True), "appear more than once (CSV lines 2, "),
    ],
)
def test_a_malformed_csv_gets_a_clear_error_naming_the_lines(
    scores_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(scores_csv)).to_csv(bad, index=False)
    assert main([str(bad), "--out", str(tmp_path / "o"), "--retrospective"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_it_runs_as_a_module(scores_csv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.analytics",
            str(scores_csv),
            "--out",
            str(tmp_path / "m"),
            "--retrospective",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_without_stored_values_it_refuses_to_give_flags_that_are_not_prospective(
    scores_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(scores_csv), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "prospective" in err and "--clinic" in err and "--retrospective" in err
    assert not (tmp_path / "o").exists()


def test_estimate_then_analyse_is_prospective_when_later_sessions_arrive(tmp_path: Path) -> None:
    """Clinic values from earlier patients (estimate), then a new cohort analysed twice: with its
    first 8 sessions, and with all of them. No flag of the first 8 sessions changes."""
    earlier = tmp_path / "earlier.csv"
    simulate_cohort(60, seed=11).scores.drop(columns=["scenario"]).to_csv(earlier, index=False)
    clinic_json = tmp_path / "clinic.json"
    assert main(["estimate", str(earlier), "--out", str(clinic_json)]) == 0
    stored = json.loads(clinic_json.read_text())
    assert stored["calibration"]["budget"] == 1.0 and stored["calibration"]["stringency"] > 0

    cohort = simulate_cohort(60, seed=12, sessions=(12, 20)).scores.drop(columns=["scenario"])
    full, first8 = tmp_path / "full.csv", tmp_path / "first8.csv"
    cohort.to_csv(full, index=False)
    cohort[cohort["session"] <= 8].to_csv(first8, index=False)
    for path, out in ((first8, "a"), (full, "b")):
        assert main([str(path), "--out", str(tmp_path / out), "--clinic", str(clinic_json)]) == 0
    keys = ["patient", "session", "scale", "kind", "alarm", "magnitude"]
    early = pd.read_csv(tmp_path / "a" / "events.csv")[keys]
    later = pd.read_csv(tmp_path / "b" / "events.csv")[keys]
    later = later[later["session"] <= 8]
    assert len(early) > 5
    pd.testing.assert_frame_equal(early.reset_index(drop=True), later.reset_index(drop=True))
