"""Exports a person can read (docs/exports.md): CSV timestamps carry their UTC offset, booleans
are written ``true``/``false`` in every report."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

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
