"""``analyse`` in patient chunks (CSV and Parquet, pyarrow) and on Dask partitions gives the
in-memory run's rows exactly, with memory bounded by a chunk (issue 18, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.analytics import columns as c
from monitoring.analytics.__main__ import main
from monitoring.analytics.analysis import analyse
from monitoring.analytics.chunked import ChunkedInputError, analyse_chunked, analyse_dask, partition
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.simulate import simulate_cohort

KEYS = {
    "sessions": [c.PATIENT, c.SCALE, c.SESSION],
    "levels": [c.PATIENT, c.SCALE],
    "events": [c.PATIENT, c.SESSION, c.SCALE, c.KIND],
    "patterns": [c.PATIENT],
}


@pytest.fixture(scope="module")
def config() -> AnalysisConfig:
    earlier = simulate_cohort(80, seed=31).scores.drop(columns=["scenario"])
    return AnalysisConfig().with_clinic(analyse(earlier).clinic)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    scores = simulate_cohort(150, seed=32, sessions=(6, 24)).scores.drop(columns=["scenario"])
    # Rows in no particular order: a patient's sessions are spread over the whole file.
    return scores.sample(frac=1.0, random_state=5).reset_index(drop=True)


def _canonical(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Text columns as text with "" for missing (a CSV reads an empty label back as missing)."""
    frame = frame.copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]) or isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object).fillna("").astype(str)
        elif not pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].astype("float64")  # nullable integers: <NA> and NaN alike
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _assert_same(expected: pd.DataFrame, got: pd.DataFrame, keys: list[str]) -> None:
    assert len(expected) > 0
    pd.testing.assert_frame_equal(
        _canonical(expected, keys), _canonical(got, keys), check_dtype=False, rtol=1e-12, atol=1e-12
    )


def _reference(csv: Path, config: AnalysisConfig) -> object:
    return analyse(pd.read_csv(csv), config)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunks_give_the_in_memory_rows_exactly(cohort, config, tmp_path: Path, fmt: str) -> None:
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    source = csv
    if fmt == "parquet":
        source = tmp_path / "in.parquet"
        cohort.to_parquet(source, index=False)
    expected = _reference(csv, config)
    result = analyse_chunked(source, tmp_path / "out", config, chunk_sessions=400)
    assert result.n_chunks >= 4 and result.n_rows == len(cohort)
    for name, keys in KEYS.items():
        _assert_same(getattr(expected, name), pd.read_csv(result.files[name]), keys)
    pd.testing.assert_frame_equal(
        expected.summary.astype({c.SCALE: str}).reset_index(drop=True),
        pd.read_csv(result.files["summary"]),
        check_dtype=False,
        rtol=1e-12,
    )


def test_every_patient_lands_in_one_chunk(cohort, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    buckets, rows = partition(csv, tmp_path, chunk_sessions=300)
    seen: dict[object, int] = {}
    for i, bucket in enumerate(buckets):
        for patient in pd.read_parquet(bucket)[c.PATIENT].unique():
            assert seen.setdefault(patient, i) == i
    assert rows == len(cohort) and len(seen) == cohort[c.PATIENT].nunique() and len(buckets) > 1


def test_chunks_need_the_clinics_stored_values(cohort, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    with pytest.raises(ChunkedInputError, match="stored reference values"):
        analyse_chunked(csv, tmp_path / "out", AnalysisConfig())


def test_a_duplicate_session_names_its_csv_lines(cohort, config, tmp_path: Path) -> None:
    broken = pd.concat([cohort, cohort.iloc[[7]]], ignore_index=True)
    csv = tmp_path / "in.csv"
    broken.to_csv(csv, index=False)
    with pytest.raises(ChunkedInputError) as caught:
        analyse_chunked(csv, tmp_path / "out", config, chunk_sessions=400)
    assert "CSV lines" in str(caught.value)
    assert "9" in str(caught.value).split("CSV lines")[1] and str(len(broken) + 1) in str(caught.value)


def test_the_cli_runs_chunked_with_stored_values(cohort, config, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    clinic = tmp_path / "clinic.json"
    assert config.clinic is not None
    clinic.write_text(json.dumps(config.clinic.to_dict()))
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    assert main([str(csv), "--out", str(whole), "--clinic", str(clinic)]) == 0
    args = [str(csv), "--out", str(chunked), "--clinic", str(clinic), "--chunked", "--chunk-sessions", "500"]
    assert main(args) == 0
    assert "patient chunk(s)" in capsys.readouterr().out
    for name, keys in KEYS.items():
        _assert_same(pd.read_csv(whole / f"{name}.csv"), pd.read_csv(chunked / f"{name}.csv"), keys)
    assert main([str(csv), "--out", str(chunked), "--chunked", "--retrospective"]) == 2
    assert "--chunked needs --clinic" in capsys.readouterr().err


@pytest.mark.slow
def test_dask_partitions_on_a_local_cluster_give_the_same_rows(cohort, config, tmp_path: Path) -> None:
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    expected = _reference(csv, config)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        frame = dd.read_csv(csv, blocksize=4_000)
        assert frame.npartitions > 2
        summary = analyse_dask(frame, tmp_path / "dask", config)
    for name, keys in KEYS.items():
        parts = sorted((tmp_path / "dask" / name).glob("part-*.parquet"))
        assert len(parts) > 1
        _assert_same(getattr(expected, name), pd.concat(map(pd.read_parquet, parts)), keys)
    assert np.array_equal(summary["n_ruptures"].to_numpy(), expected.summary["n_ruptures"].to_numpy())


def test_parquet_part_files_hold_the_same_rows(cohort, config, tmp_path: Path) -> None:
    csv = tmp_path / "in.csv"
    cohort.to_csv(csv, index=False)
    expected = _reference(csv, config)
    result = analyse_chunked(csv, tmp_path / "out", config, chunk_sessions=400, out_format="parquet")
    for name, keys in KEYS.items():
        parts = sorted(result.files[name].glob("part-*.parquet"))
        assert len(parts) == result.n_chunks > 1
        _assert_same(getattr(expected, name), pd.concat(map(pd.read_parquet, parts)), keys)
    with pytest.raises(ChunkedInputError, match="csv or parquet"):
        analyse_chunked(csv, tmp_path / "out", config, out_format="xlsx")
