"""The patient's message to their therapist (issue 16, item 4) is in no export: no report, in no
format, identified or pseudonymised, carries it. Exports have no option to include it."""

from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import pandas as pd
import pytest

from clinics.models import Episode, Session
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import submission_create
from monitoring.exports import EXPORTS, ExportFilters, render
from monitoring.exports.pdf import report_html
from monitoring.models import PatientMessage

pytestmark = pytest.mark.django_db
SECRET = "Zebrafinch-7731: please do not share this with anyone"


@pytest.fixture
def with_message(patient, alice, instrument) -> None:
    episode = Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 9, 1))
    for number in range(1, 5):
        session = Session.objects.create(
            episode=episode, number=number, date=date(2026, 9, 1) + timedelta(weeks=number), status="held"
        )
        invitation, _ = invitation_create(session=session, created_by=alice)
        submission_create(
            invitation=invitation, answers=dict.fromkeys(range(1, 13), 3 + number % 2), message=SECRET
        )
    assert PatientMessage.objects.count() == 4


@pytest.mark.parametrize("pseudonymise", [False, True])
@pytest.mark.parametrize(
    ("identifier", "fmt"), [(i, fmt) for i, exporter in EXPORTS.items() for fmt in exporter.formats]
)
def test_no_export_carries_the_message(with_message, clinic_a, patient, identifier, fmt, pseudonymise):
    exporter = EXPORTS[identifier]
    filters = ExportFilters(
        patient_code=str(patient.code) if exporter.needs_patient else "", pseudonymise=pseudonymise
    )
    frame = exporter.frame(clinic=clinic_a, filters=filters)
    if fmt == "pdf":  # the PDF's text, before WeasyPrint compresses it
        whole = frame if isinstance(frame, pd.DataFrame) else pd.concat(list(frame), ignore_index=True)
        text = report_html(exporter=exporter, clinic=clinic_a, filters=filters, frame=whole)
    else:
        rendered = render(exporter, frame, fmt, clinic=clinic_a, filters=filters)
        content = rendered.content if isinstance(rendered.content, bytes) else b"".join(rendered.content)
        if fmt == "xlsx":
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
            text = repr([list(r) for sheet in book.worksheets for r in sheet.iter_rows(values_only=True)])
        else:
            text = content.decode()
    assert len(text) > 100  # something was exported (the flags report: its header)
    assert "Zebrafinch" not in text
