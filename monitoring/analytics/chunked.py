"""``analyse`` beyond memory: patient chunks from CSV or Parquet, and the same on Dask.

Once a clinic's reference values are fixed (``config.clinic``, as the prospective CLI requires),
every patient's levels, deviations, flags and pattern label depend on that patient's sessions
only. So a file of any size can be analysed a bounded number of sessions at a time:

1. *Partition* (one streaming pass, pyarrow): rows are read in blocks and each row goes to one of
   ``n`` bucket files (Parquet, in a temporary directory) by a hash of its patient id, so all of a
   patient's sessions land in the same bucket whatever the row order of the input. ``n`` is chosen
   so a bucket holds about ``chunk_sessions`` rows.
2. *Analyse* each bucket with :func:`analyse` and append its frames to the output files.

Memory is bounded by one bucket (``analyse`` needs about 1 GB per million sessions), not by the
file. The result is the in-memory run's, row for row (ordered by patient within each bucket
rather than overall): ``tests/analytics/test_chunked.py`` compares the two. ``summary`` is merged
from the buckets' counts.

:func:`analyse_dask` runs the same per-patient analysis on the partitions of a Dask DataFrame
shuffled by patient (a cluster's workers each analyse whole patients and write their own part
files); it needs the ``research`` extra (``pip install -e '.[research]'``).

The whole file must use one type for the patient id (all numbers, or text): the first block
decides, as pandas would for the in-memory run.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.analysis import Analysis, analyse
from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.scoring import ITEM_PREFIX, AnalyticsInputError, score_items_wide

#: The frames written, one file each.
FRAMES = ("sessions", "levels", "events", "patterns")
#: Summary columns that add up across chunks; the shares are recomputed from their parts.
_COUNTS = (
    "n_patients",
    "n_sessions",
    "n_ruptures",
    "n_repairs",
    "n_unrepaired",
    "n_declines",
    "n_sudden_gains",
    "n_sudden_losses",
)
_LINE = "__line"
DEFAULT_CHUNK_SESSIONS = 1_000_000


class ChunkedInputError(ValueError):
    """The input cannot be analysed in chunks; the message says why (and which CSV lines)."""


@dataclass
class ChunkedResult:
    """What :func:`analyse_chunked` wrote: the output files, the merged summary and the counts."""

    files: dict[str, Path]
    summary: pd.DataFrame
    n_rows: int
    n_chunks: int


def _require_clinic(config: AnalysisConfig) -> None:
    if config.clinic is None:
        raise ChunkedInputError(
            "analysing in chunks needs the clinic's stored reference values (config.clinic, "
            "--clinic FILE): estimated from the whole file they would not be prospective, and "
            "the chunks would not be independent."
        )


def _patient_bucket(patient: pd.Series, n_buckets: int) -> np.ndarray:
    """A stable bucket per patient id (the same id always lands in the same bucket)."""
    hashed = pd.util.hash_pandas_object(patient, index=False).to_numpy()
    return (hashed % np.uint64(n_buckets)).astype(np.int64)


def _batches(path: Path, block_rows: int) -> Iterator[Any]:
    """pyarrow record batches of the input, the patient column's type fixed by the first block."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.suffix.lower() in (".parquet", ".pq"):
        yield from pq.ParquetFile(path).iter_batches(batch_size=block_rows)
        return
    block_size = max(1 << 20, min(block_rows * 48, 1 << 28))
    first = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size))
    patient_type = first.schema.field(c.PATIENT).type if c.PATIENT in first.schema.names else pa.string()
    first.close()
    if pa.types.is_integer(patient_type):
        patient_type = pa.int64()
    elif not pa.types.is_floating(patient_type):
        patient_type = pa.string()
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size),
        convert_options=pacsv.ConvertOptions(column_types={c.PATIENT: patient_type}),
    )
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise ChunkedInputError(
            f"{path}: the patient column mixes numbers and text, or a value does not parse ({exc})"
        ) from exc


def _n_buckets(path: Path, chunk_sessions: int) -> int:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
    else:
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
        lines = max(head.count(b"\n") - 1, 1)
        rows = int(path.stat().st_size / (len(head) / (lines + 1)))
    return max(1, math.ceil(rows / chunk_sessions))


def partition(
    path: Path, workdir: Path, *, chunk_sessions: int = DEFAULT_CHUNK_SESSIONS
) -> tuple[list[Path], int]:
    """Split ``path`` into bucket files of whole patients (Parquet) in ``workdir``; returns the
    non-empty buckets and the number of rows. Each row keeps its CSV line (``__line``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise ChunkedInputError(f"{path}: no such file")
    n_buckets = _n_buckets(path, chunk_sessions)
    writers: dict[int, Any] = {}
    schema = None
    rows = 0
    try:
        for batch in _batches(path, block_rows=min(chunk_sessions, 1_000_000)):
            if c.PATIENT not in batch.schema.names:
                raise ChunkedInputError(f"{path}: no '{c.PATIENT}' column")
            lines = pa.array(np.arange(rows, rows + batch.num_rows, dtype=np.int64) + 2)
            table = pa.Table.from_batches([batch]).append_column(_LINE, lines)
            if schema is None:
                schema = table.schema
            elif table.schema != schema:
                table = table.cast(schema)
            rows += batch.num_rows
            bucket = _patient_bucket(batch.column(c.PATIENT).to_pandas(), n_buckets)
            order = np.argsort(bucket, kind="stable")
            edges = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
            for b in range(n_buckets):
                if edges[b] == edges[b + 1]:
                    continue
                part = table.take(pa.array(order[edges[b] : edges[b + 1]]))
                if b not in writers:
                    writers[b] = pq.ParquetWriter(workdir / f"bucket-{b:05d}.parquet", schema)
                writers[b].write_table(part)
    finally:
        for writer in writers.values():
            writer.close()
    return [workdir / f"bucket-{b:05d}.parquet" for b in sorted(writers)], rows


def analyse_frame(frame: pd.DataFrame, config: AnalysisConfig) -> Analysis:
    """One chunk of whole patients: item answers scored first, then :func:`analyse`."""
    if not set(c.SUBSCALES) <= set(frame.columns) and f"{ITEM_PREFIX}1" in frame.columns:
        frame = score_items_wide(frame)
    return analyse(frame, config)


def summary_parts(summary: pd.DataFrame) -> pd.DataFrame:
    """A chunk's summary as additive counts (the shares turned back into their numerators)."""
    parts = summary[[c.SCALE, *_COUNTS]].copy()
    n = summary["n_patients"].to_numpy(dtype=float)
    parts["n_patients_with_rupture"] = np.rint(np.nan_to_num(summary["share_patients_with_rupture"]) * n)
    parts["n_ceiling"] = np.rint(np.nan_to_num(summary["ceiling_share"]) * n)
    return parts


def merge_summaries(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The clinic summary of all chunks, as :func:`analyse` would give it for the whole file."""
    total = pd.concat(parts).groupby(c.SCALE, sort=False, observed=True).sum().reindex(list(c.SCALES))
    total = total.fillna(0).astype(np.int64)
    n = total["n_patients"].to_numpy(dtype=float)
    resolved = (total["n_repairs"] + total["n_unrepaired"]).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        total["share_patients_with_rupture"] = np.where(n > 0, total["n_patients_with_rupture"] / n, np.nan)
        total["share_ruptures_repaired"] = np.where(resolved > 0, total["n_repairs"] / resolved, np.nan)
        total["ceiling_share"] = np.where(n > 0, total["n_ceiling"] / n, np.nan)
    return total.drop(columns=["n_patients_with_rupture", "n_ceiling"]).reset_index()


def analyse_chunked(
    path: Path,
    out: Path,
    config: AnalysisConfig,
    *,
    chunk_sessions: int = DEFAULT_CHUNK_SESSIONS,
    workdir: Path | None = None,
    out_format: str = "csv",
) -> ChunkedResult:
    """Analyse a CSV or Parquet file of any size in patient chunks; write ``sessions.csv``,
    ``levels.csv``, ``events.csv``, ``patterns.csv`` and ``summary.csv`` to ``out``, or with
    ``out_format="parquet"`` one directory of part files per frame (``sessions/part-N.parquet``,
    as :func:`analyse_dask` writes), much faster for tens of millions of rows.

    Raises :class:`ChunkedInputError` (naming CSV lines where it can) for unusable input; nothing
    is written to ``out`` before the whole input has been partitioned.
    """
    _require_clinic(config)
    if out_format not in ("csv", "parquet"):
        raise ChunkedInputError(f"unknown output format {out_format!r}: csv or parquet")
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".csv" if out_format == "csv" else ""
    files = {name: out / f"{name}{suffix}" for name in FRAMES}
    files["summary"] = out / "summary.csv"
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bordin-chunks-") as tmp:
        buckets, rows = partition(path, Path(tmp), chunk_sessions=chunk_sessions)
        for name in FRAMES:
            if out_format == "csv":
                files[name].unlink(missing_ok=True)
            else:
                files[name].mkdir(exist_ok=True)
                for stale in files[name].glob("part-*.parquet"):
                    stale.unlink()
        parts = []
        for number, bucket in enumerate(buckets):
            frame = pd.read_parquet(bucket)
            lines = frame.pop(_LINE).to_numpy()
            try:
                analysis = analyse_frame(frame, config)
            except AnalyticsInputError as exc:
                raise ChunkedInputError(_input_message(path, exc, lines)) from exc
            for name in FRAMES:
                if out_format == "csv":
                    target = files[name]
                    getattr(analysis, name).to_csv(target, mode="a", header=not target.exists(), index=False)
                else:
                    part = _text_categoricals(getattr(analysis, name))
                    part.to_parquet(files[name] / f"part-{number:05d}.parquet", index=False)
            parts.append(summary_parts(analysis.summary))
            del frame, analysis
    if not parts:
        raise ChunkedInputError(f"{path}: no rows to analyse")
    summary = merge_summaries(parts)
    summary.to_csv(files["summary"], index=False)
    return ChunkedResult(files=files, summary=summary, n_rows=rows, n_chunks=len(buckets))


def _input_message(path: Path, exc: AnalyticsInputError, lines: np.ndarray) -> str:
    """The analysis's complaint about a chunk, with the rows turned back into CSV lines."""
    where = sorted(int(lines[r]) for r in exc.rows if isinstance(r, int | np.integer))
    shown = ", ".join(map(str, where[:20])) + (f" and {len(where) - 20} more" if len(where) > 20 else "")
    message = str(exc).split("; rows")[0]
    return f"{path}: {message}" + (f" (CSV lines {shown})" if shown else "")


def _text_categoricals(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text: the part files of different chunks must share one schema."""
    return frame.astype(
        {col: str for col in frame.columns if isinstance(frame[col].dtype, pd.CategoricalDtype)}
    )


def _analyse_partition(frame: pd.DataFrame, config: AnalysisConfig, out: str, number: int) -> pd.DataFrame:
    """A Dask task: analyse one partition of whole patients, write its frames as Parquet part
    files, return its summary counts (small, for the client to merge)."""
    if frame.empty:
        return summary_parts(analyse(frame, config).summary).iloc[0:0]
    analysis = analyse_frame(frame.reset_index(drop=True), config)
    for name in FRAMES:
        target = Path(out) / name
        target.mkdir(parents=True, exist_ok=True)
        _text_categoricals(getattr(analysis, name)).to_parquet(
            target / f"part-{number:05d}.parquet", index=False
        )
    return summary_parts(analysis.summary)


def analyse_dask(frame: Any, out: Path, config: AnalysisConfig) -> pd.DataFrame:
    """The chunked analysis on a Dask DataFrame (``dask.dataframe.read_csv``/``read_parquet``):
    shuffled so each partition holds whole patients, each partition analysed by a worker that
    writes ``out/<frame>/part-N.parquet``; returns the merged summary (also ``out/summary.csv``).
    Uses whatever Dask scheduler is active (a ``distributed.Client`` for a cluster)."""
    import dask

    _require_clinic(config)
    out.mkdir(parents=True, exist_ok=True)
    shuffled = frame.shuffle(on=c.PATIENT)
    tasks = [
        dask.delayed(_analyse_partition)(part, config, str(out), number)
        for number, part in enumerate(shuffled.to_delayed())
    ]
    parts = [p for p in dask.compute(*tasks) if len(p)]
    summary = merge_summaries(list(parts))
    summary.to_csv(out / "summary.csv", index=False)
    return summary
