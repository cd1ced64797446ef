"""Exports a person can read (docs/exports.md): CSV timestamps carry their UTC offset, booleans
are written ``true``/``false`` in every report."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime

import pytest

from clinics.models import Patient
from monitoring.exports import EXPORTS, ExportFilters, pdf
from monitoring.models import Flag
from tests.exports.test_exports import cast, csv_rows, produce, xlsx_rows  # noqa: F401 (cast is a fixture)

pytestmark = pytest.mark.django_db


def test_csv_timestamps_carry_their_offset_in_iso_8601(cast, clinic_a):  # noqa: F811
    rows = csv_rows(produce(clinic_a, "flags", "csv", ExportFilters()))
    header = rows[0]
    for name in ("raised_at", "acknowledged_at"):
        value = rows[1][header.index(name)]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", value), value
        assert datetime.fromisoformat(value).utcoffset() is not None


def test_xlsx_timestamps_carry_their_offset_as_in_the_csv(cast, clinic_a):  # noqa: F811
    rows = xlsx_rows(produce(clinic_a, "flags", "xlsx", ExportFilters()))
    csv = csv_rows(produce(clinic_a, "flags", "csv", ExportFilters()))
    header = rows[0]
    for name in ("raised_at", "acknowledged_at"):
        value = rows[1][header.index(name)]
        assert isinstance(value, str) and datetime.fromisoformat(value).utcoffset() is not None, value
        assert value == csv[1][csv[0].index(name)]
    assert isinstance(rows[1][header.index("date")], datetime)  # a date stays an Excel date


@pytest.mark.parametrize("identifier", ["flags", "session_scores", "patient_levels"])
def test_booleans_are_true_or_false_in_csv(cast, clinic_a, identifier):  # noqa: F811
    Flag.objects.filter(pk=cast["flag"].pk).update(alarm=True)
    text = produce(clinic_a, identifier, "csv", ExportFilters()).decode()
    cells = {cell for row in csv_rows(text.encode())[1:] for cell in row}
    assert not {"True", "False"} & cells
    if identifier == "flags":
        assert "true" in cells  # the rupture's alarm


def test_the_flags_pdf_prints_labels_and_readable_headers_not_codes(cast, clinic_a):  # noqa: F811
    Flag.objects.filter(pk=cast["flag"].pk).update(kind="sudden_loss")
    exporter, filters = EXPORTS["flags"], ExportFilters()
    html = pdf.report_html(
        exporter=exporter,
        clinic=clinic_a,
        filters=filters,
        frame=exporter.frame(clinic=clinic_a, filters=filters),
    )
    assert "<td>Sudden loss</td>" in html and "<td>sudden_loss</td>" not in html
    assert "Discussed with patient" in html and ">discussed<" not in html
    assert ">Flag<" in html and ">kind<" not in html


def pdf_text(data: bytes, tmp_path) -> str:
    """The PDF as a person reads it: pdftotext's layout of the real file, whitespace kept."""
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def words(text: str) -> str:
    return " ".join(text.split())


needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)"
)


@needs_pdftotext
def test_pdf_tables_do_not_wrap_a_date_or_a_word_mid_value(cast, clinic_a, tmp_path):  # noqa: F811
    """A long label and a long note squeeze the flags table: the date, the flag and the person
    stay whole (they came out as '2026-0' over '9-22', 'Rupt' over 'ure', 'Alic' over 'e A')."""
    flag = cast["flag"]
    Flag.objects.filter(pk=flag.pk).update(
        acknowledged_note="We talked about the missed session and the plan for the weeks ahead. " * 3
    )
    Patient.objects.filter(pk=cast["formula"].pk).update(
        label="Averyveryverylonglabel-Patientname-Number-Twelve"
    )
    text = pdf_text(produce(clinic_a, "flags", "pdf", ExportFilters()), tmp_path)
    table = text[text.index("Explanation") :]
    day = flag.session.date.isoformat()
    assert any(day in line for line in table.splitlines()), table
    assert re.search(r"\bRupture\b", table) and "Discussed with" in table
    assert not re.search(r"\b(rupture|discussed|total)\b", table)  # labels, not codes
    html = pdf.report_html(
        exporter=EXPORTS["flags"],
        clinic=clinic_a,
        filters=ExportFilters(),
        frame=EXPORTS["flags"].frame(clinic=clinic_a, filters=ExportFilters()),
    )
    assert '<td class="nowrap">' + day + "</td>" in html and "<td>Total alliance</td>" in html


@needs_pdftotext
def test_the_levels_pdf_has_headers_in_words_and_labels_not_codes(cast, clinic_a, tmp_path):  # noqa: F811
    text = words(pdf_text(produce(clinic_a, "patient_levels", "pdf", ExportFilters()), tmp_path))
    table = text[text.index("every scale is in the CSV and Excel files.") :]
    for header in (
        "Patient",
        "Therapist",
        "Treatment",
        "Sessions",
        "Ruptures",
        "Repairs",
        "Declines",
        "Pattern",
    ):
        assert header in table, header
    assert "Long-run" in table and "(EB)" in table
    for field in ("level eb", "n ruptures", "n unrepaired", "pattern label", "provisional", "level_eb"):
        assert field not in table, field
    assert "Cognitive behavioural" in table and " cbt " not in f" {table} "


@needs_pdftotext
def test_the_patient_reports_session_table_has_headers_in_words(cast, clinic_a, tmp_path):  # noqa: F811
    filters = ExportFilters(patient_code=str(cast["formula"].code))
    text = pdf_text(produce(clinic_a, "patient_report", "pdf", filters), tmp_path)
    header = next(line for line in text.splitlines() if "Session" in line and "Date" in line)
    assert "z (total)" in header and "Goal and task" in header and "z total" not in header
    assert re.search(r"^\s*1\s+2026-09-01\s", text, flags=re.M)  # the session's date whole


@needs_pdftotext
def test_the_clinic_summary_pdf_has_the_reports_therapist_table_and_months(cast, clinic_a, tmp_path):  # noqa: F811
    """The clinic-summary PDF carries the web report's by-therapist table (its own selector, the
    same figures) and the forms completed per month, as a chart and a table."""
    from datetime import date

    from monitoring.clinic_admin.report import ReportFilters, clinic_report

    report = clinic_report(clinic=clinic_a, filters=ReportFilters(start=date.min, end=date.max))
    assert report.therapists and report.months
    text = words(pdf_text(produce(clinic_a, "clinic_summary", "pdf", ExportFilters()), tmp_path))
    assert "By therapist" in text and "Forms completed by month" in text
    for t in report.therapists:
        name = t.therapist.get_full_name() or t.therapist.email
        row = rf"{re.escape(name)}( \(small)? {t.patients} {t.held} \d+% {t.patients_with_rupture} "
        assert re.search(row + rf"{t.repaired} ?/ ?{t.unrepaired} {t.declines}", text), text
    for m, h, d in zip(report.months, report.held_by_month, report.completed_by_month, strict=True):
        assert re.search(rf"{m} {h} {d} \d+%", text), m
    assert "Charlie" not in text  # another clinic's therapist

    one = report.therapists[0].therapist
    only = words(
        pdf_text(produce(clinic_a, "clinic_summary", "pdf", ExportFilters(therapist_id=one.pk)), tmp_path)
    )
    by_therapist = only[only.index("By therapist") : only.index("Alliance by scale")]
    others = [t.therapist.get_full_name() for t in report.therapists[1:]]
    assert one.get_full_name() in by_therapist and not any(o in by_therapist for o in others)

    research = words(
        pdf_text(produce(clinic_a, "clinic_summary", "pdf", ExportFilters(pseudonymise=True)), tmp_path)
    )
    assert "By therapist" in research
    for t in report.therapists:
        assert t.therapist.get_full_name() not in research and t.therapist.first_name not in research
