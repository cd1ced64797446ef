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
    assert main([str(scores_csv), "--out", str(out)]) == 0
    for name in ("sessions.csv", "levels.csv", "events.csv", "patterns.csv", "summary.csv", "clinic.json"):
        assert (out / name).exists(), name
    events = pd.read_csv(out / "events.csv")
    assert {"patient", "session", "scale", "kind", "magnitude", "threshold", "explanation"} <= set(
        events.columns
    )
    assert "30 patients" in capsys.readouterr().out


def test_it_reuses_stored_clinic_values_and_presets(scores_csv: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    main([str(scores_csv), "--out", str(first)])
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
    assert main([str(path), "--out", str(tmp_path / "o")]) == 0


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
    assert main([str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_it_runs_as_a_module(scores_csv: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.analytics", str(scores_csv), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
