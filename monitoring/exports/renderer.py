"""The renderer: one function turns any exporter's frame into CSV, XLSX, PDF or a FHIR R4 bundle,
so a format is written once and every report gets it.

What differs between reports is said by the exporter's attributes (``formats``,
``output_columns``, ``streaming``, ``pdf_template``/``pdf_context``, ``answers``), never by its
name. CSV and XLSX cells pass through the formula-injection guard (``monitoring.exports.guard``);
CSV and XLSX of a streamed exporter stream, chunk by chunk.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from clinics.errors import ApplicationError
from clinics.models import Clinic
from monitoring.exports.base import (
    CONTENT_TYPES,
    CSV,
    FHIR,
    FORMAT_NAMES,
    PDF,
    XLSX,
    Exporter,
    ExportFilters,
    FrameOrChunks,
    ProgressCallback,
)
from monitoring.exports.fhir import bundle_stream
from monitoring.exports.guard import guard_frame
from monitoring.exports.pdf import report_pdf

#: Excel's limit is 1,048,576 rows per sheet including the header; longer exports go on.
XLSX_MAX_ROWS = 1_048_575


class Rendered(NamedTuple):
    """A rendered export: ``content`` is bytes, or an iterator of bytes for streamed formats."""

    content: bytes | Iterator[bytes]
    content_type: str
    filename: str


def render(
    exporter: Exporter,
    frame: FrameOrChunks,
    fmt: str,
    *,
    clinic: Clinic,
    filters: ExportFilters,
    on_rows: ProgressCallback | None = None,
) -> Rendered:
    """Turn an exporter's frame into ``fmt``. CSV and XLSX of a streamed exporter stream.

    ``on_rows`` is called with the number of rows written so far, for a job's progress.
    PDF and FHIR need more than the frame (the clinic's name, the instrument, the charts), so
    they also get the clinic and the filters; both are always passed, for one signature.
    """
    if fmt not in exporter.formats:
        raise ApplicationError(f"{exporter.verbose_name} is not available as {FORMAT_NAMES.get(fmt, fmt)}.")
    filename = exporter.filename(clinic=clinic, filters=filters, fmt=fmt)
    content_type = CONTENT_TYPES[fmt]
    columns = exporter.output_columns(pseudonymise=filters.pseudonymise)
    chunks = _chunks(frame)
    if fmt == CSV:
        return Rendered(csv_stream(chunks, columns=columns, on_rows=on_rows), content_type, filename)
    if fmt == XLSX:
        return Rendered(
            xlsx_stream(chunks, columns=columns, sheet=exporter.verbose_name, on_rows=on_rows),
            content_type,
            filename,
        )
    if fmt == PDF:
        whole = pd.concat(list(chunks), ignore_index=True) if exporter.streaming else frame
        assert isinstance(whole, pd.DataFrame)
        return Rendered(
            report_pdf(exporter=exporter, clinic=clinic, filters=filters, frame=whole),
            content_type,
            filename,
        )
    if fmt == FHIR:
        answers = exporter.answers(clinic=clinic, filters=filters)
        return Rendered(
            bundle_stream(answers=answers, clinic=clinic, filters=filters, on_rows=on_rows),
            content_type,
            filename,
        )
    raise ApplicationError(f"Unknown format '{fmt}'.")


def _chunks(frame: FrameOrChunks) -> Iterator[pd.DataFrame]:
    if isinstance(frame, pd.DataFrame):
        yield frame
    else:
        yield from frame


def csv_stream(
    chunks: Iterable[pd.DataFrame], *, columns: Sequence[str], on_rows: ProgressCallback | None = None
) -> Iterator[bytes]:
    """CSV (UTF-8, comma, CRLF as RFC 4180), one encoded block per chunk; text cells guarded."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(columns)
    yield buffer.getvalue().encode()
    written = 0
    for chunk in chunks:
        if chunk.empty:
            continue
        block = guard_frame(readable(chunk[list(columns)])).to_csv(
            index=False, header=False, lineterminator="\r\n", date_format="%Y-%m-%d %H:%M:%S"
        )
        yield block.encode()
        written += len(chunk)
        if on_rows:
            on_rows(written)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV cells a person and a program both read one way: timestamps in ISO 8601 with their UTC
    offset (``2026-09-01T10:15:00+02:00``, the clinic's zone), booleans ``true``/``false``."""
    changed: dict[str, pd.Series] = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            changed[name] = column.map(lambda v: "" if pd.isna(v) else v.isoformat())
        elif pd.api.types.is_bool_dtype(column):
            changed[name] = column.map({True: "true", False: "false"})
        elif column.dtype == object:
            sample = column.dropna().head(20).tolist()
            if any(isinstance(v, bool | np.bool_) for v in sample) or any(
                isinstance(v, datetime) and v.tzinfo is not None for v in sample
            ):
                changed[name] = column.map(_readable_cell)
    return frame.assign(**changed) if changed else frame


def _readable_cell(value: object) -> object:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return value


def xlsx_stream(
    chunks: Iterable[pd.DataFrame],
    *,
    columns: Sequence[str],
    sheet: str,
    on_rows: ProgressCallback | None = None,
    read_size: int = 1 << 20,
) -> Iterator[bytes]:
    """An XLSX workbook written with XlsxWriter in ``constant_memory`` mode (rows go to disk as
    they are written), then read back in blocks. Text cells are guarded and always written as
    strings (``strings_to_formulas`` off), numbers as numbers, dates as Excel dates, timestamps
    (moments, with a time zone) as ISO 8601 text with their UTC offset, as in the CSV."""
    import xlsxwriter

    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="bordin-export-")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "remove_timezone": True,
            },
        )
        bold = workbook.add_format({"bold": True, "bottom": 1})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        number = workbook.add_format({"num_format": "0.00##"})
        title = sheet[:28]
        worksheet, row, sheets = None, 0, 0

        def new_sheet() -> Any:
            nonlocal sheets
            sheets += 1
            ws = workbook.add_worksheet(title if sheets == 1 else f"{title[:24]} ({sheets})")
            for col, name in enumerate(columns):
                ws.write_string(0, col, name, bold)
                ws.set_column(col, col, max(10, min(40, len(name) + 2)))
            ws.freeze_panes(1, 0)
            return ws

        worksheet = new_sheet()
        written = 0
        for chunk in chunks:
            if chunk.empty:
                continue
            guarded = guard_frame(chunk[list(columns)])
            for values in guarded.itertuples(index=False, name=None):
                if row >= XLSX_MAX_ROWS:
                    worksheet, row = new_sheet(), 0
                row += 1
                for col, value in enumerate(values):
                    _xlsx_cell(worksheet, row, col, value, day=day, stamp=stamp, number=number)
            written += len(chunk)
            if on_rows:
                on_rows(written)
        workbook.close()
        with open(path, "rb") as stream:
            while block := stream.read(read_size):
                yield block
    finally:
        os.unlink(path)


def _xlsx_cell(ws: Any, row: int, col: int, value: object, *, day: Any, stamp: Any, number: Any) -> None:
    if value is None or value is pd.NA or value is pd.NaT:
        return
    if isinstance(value, bool | np.bool_):
        ws.write_boolean(row, col, bool(value))
    elif isinstance(value, int | np.integer):
        ws.write_number(row, col, int(value))
    elif isinstance(value, float | np.floating):
        if np.isfinite(value):
            ws.write_number(row, col, float(value), number)
    elif isinstance(value, datetime | pd.Timestamp) and value.tzinfo is not None:
        # A moment, as in the CSV: ISO 8601 with its UTC offset. A spreadsheet's date cell has no
        # time zone, and the wall time alone is ambiguous (the hour that repeats in autumn).
        ws.write_string(row, col, value.isoformat())
    elif isinstance(value, datetime | pd.Timestamp):
        ws.write_datetime(row, col, value, stamp)
    elif isinstance(value, date):
        ws.write_datetime(row, col, value, day)
    else:
        ws.write_string(row, col, str(value))
