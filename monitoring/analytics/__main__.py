"""Command line for research use without a database.

    python -m monitoring.analytics estimate CALIBRATION.csv --out clinic.json [--preset standard]
    python -m monitoring.analytics IN.csv --out DIR --clinic clinic.json [--preset standard]
    python -m monitoring.analytics IN.csv --out DIR --retrospective
    python -m monitoring.analytics IN.parquet --out DIR --clinic clinic.json --chunked

Flags are prospective (methods.md section 4): a flag at session t may use only what was known by
t, including the clinic's reference values. So the analysis takes stored values (``--clinic``,
written by ``estimate`` from data that came before, e.g. last year's patients or a calibration
period), and then adding later sessions to IN.csv never changes an earlier flag. ``estimate``
also calibrates the thresholds to the preset's false-alarm budget for that clinic. With
``--retrospective`` the values are estimated from IN.csv itself, so flags can change when
sessions are added: fine for a one-off look at a closed data set, and said so in the output.

IN.csv has one row per patient-rated response: ``patient``, ``session``, ``goal``, ``task``,
``bond`` and optionally ``total``; or item answers ``item_1`` .. ``item_12`` (WAI-SR order), which
are scored first. Writes ``sessions.csv``, ``levels.csv``, ``events.csv``, ``patterns.csv``,
``summary.csv`` and ``clinic.json`` (the reference values used). A malformed file (missing column,
score off the scale, the same patient and session twice) stops with a message naming the CSV
lines, and exit status 2.

``--chunked`` reads CSV or Parquet (``.parquet``) in patient chunks of about ``--chunk-sessions``
rows with memory bounded by one chunk, for files larger than memory; it needs ``--clinic`` and
gives the same rows (monitoring/analytics/chunked.py; the ``research`` extra for Parquet and
Dask).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from monitoring.analytics import columns as c
from monitoring.analytics.analysis import analyse
from monitoring.analytics.calibration import calibrate
from monitoring.analytics.chunked import DEFAULT_CHUNK_SESSIONS, ChunkedInputError, analyse_chunked
from monitoring.analytics.clinic import ClinicParameters
from monitoring.analytics.config import PRESETS, AnalysisConfig
from monitoring.analytics.scoring import ITEM_PREFIX, AnalyticsInputError, score_items_wide

#: Index label -> CSV line (1 header line, 0-based index).
_HEADER_LINES = 2

NOT_PROSPECTIVE = (
    "error: flags must be prospective: give stored clinic values with --clinic FILE (made by "
    "`python -m monitoring.analytics estimate EARLIER.csv --out FILE`), or add --retrospective "
    "to estimate them from this same file (then flags may change when sessions are added)."
)


def _csv_lines(rows: Sequence[object]) -> str:
    lines = [str(int(str(r)) + _HEADER_LINES) for r in rows if str(r).isdigit()]
    shown = ", ".join(lines[:20])
    return shown + (f" and {len(lines) - 20} more" if len(lines) > 20 else "")


def _read_scores(path: Path) -> pd.DataFrame | None:
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return None
    if not set(c.SUBSCALES) <= set(frame.columns) and f"{ITEM_PREFIX}1" in frame.columns:
        frame = score_items_wide(frame)
    return frame


def _input_error(path: Path, exc: AnalyticsInputError) -> int:
    where = _csv_lines(exc.rows)
    message = str(exc).split("; rows")[0]
    print(f"error: {path}: {message}" + (f" (CSV lines {where})" if where else ""), file=sys.stderr)
    return 2


def estimate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.analytics estimate",
        description="Estimate a clinic's reference values and calibrate its thresholds to the "
        "preset's false-alarm budget; writes clinic.json for later prospective analyses.",
    )
    parser.add_argument("input", type=Path, help="CSV of earlier patients' scores")
    parser.add_argument("--out", type=Path, required=True, help="the clinic.json to write")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="standard")
    args = parser.parse_args(argv)
    frame = _read_scores(args.input)
    if frame is None:
        return 2
    config = AnalysisConfig.preset(args.preset)
    try:
        clinic = analyse(frame, config).clinic
    except AnalyticsInputError as exc:
        return _input_error(args.input, exc)
    cal = calibrate(clinic, config)
    args.out.write_text(json.dumps(clinic.calibrated(cal.to_dict()).to_dict(), indent=2))
    print(
        f"{clinic.n_patients} patients; thresholds calibrated to {cal.budget:g} attention sessions "
        f"per 100 sessions of a steady patient (stringency {cal.stringency:.2f}); wrote {args.out}"
    )
    return 0


def _chunked(args: argparse.Namespace, config: AnalysisConfig) -> int:
    try:
        result = analyse_chunked(
            args.input, args.out, config, chunk_sessions=args.chunk_sessions, out_format=args.out_format
        )
    except ChunkedInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assert config.clinic is not None
    (args.out / "clinic.json").write_text(json.dumps(config.clinic.to_dict(), indent=2))
    print(
        f"{result.n_rows} rows in {result.n_chunks} patient chunk(s); wrote "
        + ", ".join(str(path) for path in result.files.values())
        + f", {args.out / 'clinic.json'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["estimate"]:
        return estimate(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.analytics",
        description="Alliance levels, deviations and flags (ruptures, repairs, declines, sudden "
        "changes) from a CSV of session scores. See docs/methods.md.",
    )
    parser.add_argument("input", type=Path, help="CSV: patient, session, goal, task, bond[, total]")
    parser.add_argument("--out", type=Path, required=True, help="directory for the result CSVs")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="standard",
        help="false-alarm budget preset (default: standard)",
    )
    parser.add_argument("--clinic", type=Path, help="clinic.json from `estimate` (or an earlier run)")
    parser.add_argument(
        "--retrospective",
        action="store_true",
        help="estimate the clinic's values from this same file (flags are then not prospective)",
    )
    parser.add_argument(
        "--detrend", action="store_true", help="levels and states from per-patient trend lines"
    )
    parser.add_argument(
        "--chunked",
        action="store_true",
        help="read the input (CSV or .parquet) in patient chunks with bounded memory; needs --clinic",
    )
    parser.add_argument(
        "--chunk-sessions",
        type=int,
        default=DEFAULT_CHUNK_SESSIONS,
        help=f"rows per chunk with --chunked (default {DEFAULT_CHUNK_SESSIONS:,})",
    )
    parser.add_argument(
        "--out-format",
        choices=("csv", "parquet"),
        default="csv",
        help="with --chunked: csv files, or one directory of parquet part files per frame",
    )
    args = parser.parse_args(argv)
    if args.chunked and not args.clinic:
        print(
            "error: --chunked needs --clinic FILE: the chunks are independent only once the "
            "clinic's reference values are fixed.",
            file=sys.stderr,
        )
        return 2
    if not args.clinic and not args.retrospective:
        print(NOT_PROSPECTIVE, file=sys.stderr)
        return 2

    clinic = None
    if args.clinic:
        try:
            clinic = ClinicParameters.from_dict(json.loads(args.clinic.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: cannot read clinic values from {args.clinic}: {exc}", file=sys.stderr)
            return 2
    config = AnalysisConfig.preset(args.preset, detrend=args.detrend).with_clinic(clinic)
    if args.chunked:
        return _chunked(args, config)
    frame = _read_scores(args.input)
    if frame is None:
        return 2
    try:
        analysis = analyse(frame, config)
    except AnalyticsInputError as exc:
        return _input_error(args.input, exc)

    args.out.mkdir(parents=True, exist_ok=True)
    analysis.sessions.to_csv(args.out / "sessions.csv", index=False)
    analysis.levels.to_csv(args.out / "levels.csv", index=False)
    analysis.events.to_csv(args.out / "events.csv", index=False)
    analysis.patterns.to_csv(args.out / "patterns.csv", index=False)
    analysis.summary.to_csv(args.out / "summary.csv", index=False)
    (args.out / "clinic.json").write_text(json.dumps(analysis.clinic.to_dict(), indent=2))
    note = " (retrospective: clinic values from this file)" if clinic is None else ""
    print(
        f"{len(analysis.levels[c.PATIENT].unique())} patients, {len(analysis.events)} flags{note}; "
        f"wrote {args.out}/sessions.csv, levels.csv, events.csv, patterns.csv, summary.csv, clinic.json"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
