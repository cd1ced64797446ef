"""Command line for research use without a database.

    python -m monitoring.analytics IN.csv --out DIR [--preset standard] [--clinic clinic.json]

IN.csv has one row per patient-rated response: ``patient``, ``session``, ``goal``, ``task``,
``bond`` and optionally ``total``; or item answers ``item_1`` .. ``item_12`` (WAI-SR order), which
are scored first. Writes ``sessions.csv``, ``levels.csv``, ``events.csv``, ``patterns.csv``,
``summary.csv`` and ``clinic.json`` (the reference values used, reusable with ``--clinic``).
A malformed file (missing column, score off the scale, the same patient and session twice) stops
with a message naming the CSV lines, and exit status 2.
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
from monitoring.analytics.clinic import ClinicParameters
from monitoring.analytics.config import PRESETS, AnalysisConfig
from monitoring.analytics.scoring import ITEM_PREFIX, AnalyticsInputError, score_items_wide

#: Index label -> CSV line (1 header line, 0-based index).
_HEADER_LINES = 2


def _csv_lines(rows: Sequence[object]) -> str:
    lines = [str(int(str(r)) + _HEADER_LINES) for r in rows if str(r).isdigit()]
    shown = ", ".join(lines[:20])
    return shown + (f" and {len(lines) - 20} more" if len(lines) > 20 else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.analytics",
        description="Alliance levels, deviations and flags (ruptures, repairs, declines, sudden "
        "changes) from a CSV of session scores. See docs/methods.md.",
    )
    parser.add_argument("input", type=Path, help="CSV: patient, session, goal, task, bond[, total]")
    parser.add_argument("--out", type=Path, required=True, help="directory for the result CSVs")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="standard", help="sensitivity preset (default: standard)"
    )
    parser.add_argument(
        "--clinic", type=Path, help="clinic.json from an earlier run, to reuse its reference values"
    )
    parser.add_argument(
        "--detrend", action="store_true", help="levels and states from per-patient trend lines"
    )
    args = parser.parse_args(argv)

    try:
        frame = pd.read_csv(args.input)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    clinic = None
    if args.clinic:
        try:
            clinic = ClinicParameters.from_dict(json.loads(args.clinic.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: cannot read clinic values from {args.clinic}: {exc}", file=sys.stderr)
            return 2
    config = AnalysisConfig.preset(args.preset, detrend=args.detrend, clinic=clinic)
    try:
        if not set(c.SUBSCALES) <= set(frame.columns) and f"{ITEM_PREFIX}1" in frame.columns:
            frame = score_items_wide(frame)
        analysis = analyse(frame, config)
    except AnalyticsInputError as exc:
        where = _csv_lines(exc.rows)
        message = str(exc).split("; rows")[0]
        print(f"error: {args.input}: {message}" + (f" (CSV lines {where})" if where else ""), file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    analysis.sessions.to_csv(args.out / "sessions.csv", index=False)
    analysis.levels.to_csv(args.out / "levels.csv", index=False)
    analysis.events.to_csv(args.out / "events.csv", index=False)
    analysis.patterns.to_csv(args.out / "patterns.csv", index=False)
    analysis.summary.to_csv(args.out / "summary.csv", index=False)
    (args.out / "clinic.json").write_text(json.dumps(analysis.clinic.to_dict(), indent=2))
    print(
        f"{len(analysis.levels[c.PATIENT].unique())} patients, {len(analysis.events)} flags; "
        f"wrote {args.out}/sessions.csv, levels.csv, events.csv, patterns.csv, summary.csv, clinic.json"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
