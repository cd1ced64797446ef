"""Exports (docs/exports.md): every report in every format it offers, the formula guard,
pseudonymisation, filters, clinic isolation, the audit trail, background jobs (inline and on
RQ with the real Redis), the command, and a round trip through the CSV import.

The cast: in clinic A, alice's patient is labelled ``=HYPERLINK("x")`` (a formula) and has a
flag acknowledged with the note ``+cmd``; bob's patient is in exposure therapy. Clinic B
(charlie, erin) has a patient whose label must never appear in clinic A's files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import zlib
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.http import Http404
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Membership, Patient, Session
from clinics.services import staff_create
from monitoring import exports
from monitoring.analytics import analyse
from monitoring.analytics import columns as c
from monitoring.collection.importing import responses_import
from monitoring.collection.responses import response_create
from monitoring.exports import EXPORTS, ExportFilters, fhir, guard_cell, pdf, pseudonym, render, renderer
from monitoring.exports import jobs as export_jobs
from monitoring.exports import services as export_services
from monitoring.exports import worker as export_worker
from monitoring.exports.reports import item_answers
from monitoring.flags.selectors import analysis_config
from monitoring.instruments.scores import scores_for_episodes
from monitoring.models import ExportJob, Flag, Instrument

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)
FORMULA_LABEL = '=HYPERLINK("x")'
FORMULA_NOTE = "+cmd"
START = date(2026, 9, 1)
COMBINATIONS = [(identifier, fmt) for identifier, e in EXPORTS.items() for fmt in e.formats]


# --- Fixtures and helpers ----------------------------------------------------------------------


def course(
    patient: Patient,
    therapist,
    instrument: Instrument,
    *,
    treatment: str,
    totals: list[int],
    start: date = START,
) -> Episode:
    """An episode with one answered, held session a week for each value (all 12 items)."""
    episode = Episode.objects.create(
        patient=patient, therapist=therapist, treatment=treatment, started_on=start
    )
    for number, value in enumerate(totals, start=1):
        session = Session.objects.create(
            episode=episode,
            number=number,
            date=start + timedelta(weeks=number - 1),
            status=Session.Status.HELD,
        )
        answers = {item: max(1, min(5, value - (item % 2 if value == 5 else 0))) for item in range(1, 13)}
        response_create(session=session, instrument=instrument, answers=answers, source="staff")
    return episode


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def cast(clinic_a, clinic_b, alice, bob, dana, charlie, erin, instrument) -> dict[str, object]:
    formula = Patient.objects.create(
        clinic=clinic_a, label=FORMULA_LABEL, external_id="EXT-9", therapist=alice
    )
    plain = Patient.objects.create(clinic=clinic_a, label="B.B.", therapist=bob)
    other = Patient.objects.create(
        clinic=clinic_b, label="CHARLIE-SECRET", external_id="B-EXT", therapist=charlie
    )
    ep_formula = course(formula, alice, instrument, treatment="cbt", totals=[4, 4, 5, 2, 4, 4, 3, 4])
    ep_plain = course(plain, bob, instrument, treatment="exposure", totals=[3, 4, 4, 3, 4])
    course(other, charlie, instrument, treatment="cbt", totals=[5, 4, 4, 5])
    session = ep_formula.sessions.get(number=4)
    flag = Flag.objects.create(
        episode=ep_formula,
        session=session,
        scale="total",
        kind="rupture",
        magnitude=2.1,
        threshold=2.5,
        explanation="Total alliance 2.0 points below this patient's usual level.",
        detail={"rule": "baseline_k_sd", "score": 2.0, "baseline": 4.3, "s_used": 0.4},
        acknowledgement="discussed",
        acknowledged_note=FORMULA_NOTE,
        acknowledged_at=timezone.now(),
        acknowledged_by=alice,
    )
    return {
        "formula": formula,
        "plain": plain,
        "other": other,
        "ep_formula": ep_formula,
        "ep_plain": ep_plain,
        "flag": flag,
    }


def filters_for(identifier: str, cast: dict[str, object], **kwargs: object) -> ExportFilters:
    if identifier == "patient_report":
        kwargs.setdefault("patient_code", str(cast["formula"].code))  # type: ignore[attr-defined]
    return ExportFilters(**kwargs)  # type: ignore[arg-type]


def produce(clinic: Clinic, identifier: str, fmt: str, filters: ExportFilters) -> bytes:
    exporter = EXPORTS[identifier]
    rendered = render(
        exporter, exporter.frame(clinic=clinic, filters=filters), fmt, clinic=clinic, filters=filters
    )
    return rendered.content if isinstance(rendered.content, bytes) else b"".join(rendered.content)


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def xlsx_rows(data: bytes) -> list[list[object]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return [list(row) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


def pdf_pages(data: bytes) -> int:
    """Page objects in a PDF, looking inside compressed object streams too (WeasyPrint uses them)."""
    parts = [data]
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, flags=re.S):
        try:
            parts.append(zlib.decompress(stream))
        except zlib.error:
            continue
    return sum(len(re.findall(rb"/Type\s*/Page\b", part)) for part in parts)


def output_columns(identifier: str, *, pseudonymise: bool = False) -> list[str]:
    exporter = EXPORTS[identifier]
    return (
        exporter.column_names()
        if identifier == "item_answers"
        else exporter.output_columns(pseudonymise=pseudonymise)
    )


# --- Every report in every format -------------------------------------------------------------------


@pytest.mark.parametrize(("identifier", "fmt"), COMBINATIONS)
def test_each_report_renders_valid_output_in_each_of_its_formats(cast, clinic_a, identifier, fmt):
    data = produce(clinic_a, identifier, fmt, filters_for(identifier, cast))
    if fmt == "csv":
        rows = csv_rows(data)
        assert rows[0] == output_columns(identifier)
        assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows)
    elif fmt == "xlsx":
        rows = xlsx_rows(data)
        assert rows[0] == output_columns(identifier)
        assert len(rows) > 1
    elif fmt == "pdf":
        assert data.startswith(b"%PDF-") and pdf_pages(data) >= 1
    else:
        bundle = json.loads(data)
        Bundle.model_validate(bundle)
        assert fhir.code_problems(bundle) == []
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        # The instrument, its two code systems (answers, subscales), 8 + 5 sessions in clinic A.
        assert kinds == ["Questionnaire", "CodeSystem", "CodeSystem"] + ["QuestionnaireResponse"] * 13


def test_csv_and_xlsx_hold_the_same_rows(cast, clinic_a):
    for identifier in ("session_scores", "item_answers", "flags", "patient_levels"):
        from_csv = csv_rows(produce(clinic_a, identifier, "csv", ExportFilters()))
        from_xlsx = xlsx_rows(produce(clinic_a, identifier, "xlsx", ExportFilters()))
        assert len(from_csv) == len(from_xlsx), identifier


def test_item_answers_are_exactly_the_import_layout_and_numbers_stay_numbers(cast, clinic_a):
    rows = csv_rows(produce(clinic_a, "item_answers", "csv", ExportFilters()))
    assert rows[0] == ["patient", "external_id", "session", "date", "measure", "item", "value"]
    assert len(rows) == 1 + 13 * 12
    assert rows[1][2:] == ["1", "2026-09-01", "alliance", "1", "4"]
    sheet = xlsx_rows(produce(clinic_a, "item_answers", "xlsx", ExportFilters()))
    assert len(sheet) == len(rows)
    assert all(isinstance(row[5], int) and isinstance(row[6], int) for row in sheet[1:])


def test_a_big_export_is_streamed_in_chunks_with_the_same_bytes(cast, clinic_a):
    exporter = exports.ItemAnswers()
    chunks = list(exporter.frame(clinic=clinic_a, filters=ExportFilters(), chunk_rows=25))
    assert len(chunks) == 7 and sum(len(f) for f in chunks) == 13 * 12
    columns = exporter.column_names()
    streamed = b"".join(exports.csv_stream(iter(chunks), columns=columns))
    whole = b"".join(exports.csv_stream([pd.concat(chunks)], columns=columns))
    assert streamed == whole
    assert exporter.count(clinic=clinic_a, filters=ExportFilters()) == 13 * 12


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(monkeypatch, cast, clinic_a):
    monkeypatch.setattr(renderer, "XLSX_MAX_ROWS", 100)
    book = openpyxl.load_workbook(io.BytesIO(produce(clinic_a, "item_answers", "xlsx", ExportFilters())))
    assert [ws.max_row for ws in book.worksheets] == [101, 57]
    assert [ws.title for ws in book.worksheets] == ["Item answers", "Item answers (2)"]


def test_a_report_refuses_a_format_it_does_not_offer(cast, clinic_a):
    with pytest.raises(ApplicationError, match="not available"):
        produce(clinic_a, "item_answers", "pdf", ExportFilters())


# --- PDF reports ---------------------------------------------------------------------------------


def test_the_patient_report_shows_the_patient_their_course_flags_and_acknowledgements(cast, clinic_a):
    exporter = EXPORTS["patient_report"]
    filters = filters_for("patient_report", cast)
    html = pdf.report_html(
        exporter=exporter,
        clinic=clinic_a,
        filters=filters,
        frame=exporter.frame(clinic=clinic_a, filters=filters),
    )
    for expected in (
        "=HYPERLINK(&quot;x&quot;)",
        "EXT-9",
        "Alice A",
        "Cognitive behavioural therapy",
        "Long-run level",
        "<svg",
        "Total alliance 2.0 points below",
        "Discussed with patient",
        "by Alice A",
        FORMULA_NOTE,
        "Sessions",
    ):
        assert expected in html, expected
    assert len(re.findall(r"<tr>", html)) == 1 + 8  # header and one row per session


def test_the_pseudonymised_patient_report_names_nobody(cast, clinic_a):
    exporter = EXPORTS["patient_report"]
    filters = filters_for("patient_report", cast, pseudonymise=True)
    html = pdf.report_html(
        exporter=exporter,
        clinic=clinic_a,
        filters=filters,
        frame=exporter.frame(clinic=clinic_a, filters=filters),
    )
    code = cast["formula"].code  # type: ignore[attr-defined]
    assert pseudonym(clinic=clinic_a, kind="patient", value=code, key=filters.pseudonym_key) in html
    for secret in ("HYPERLINK", "EXT-9", "Alice", FORMULA_NOTE):
        assert secret not in html


def test_the_patient_report_needs_a_patient(cast, clinic_a):
    with pytest.raises(ApplicationError, match="Choose the patient"):
        EXPORTS["patient_report"].frame(clinic=clinic_a, filters=ExportFilters())


def test_the_clinic_report_is_a_real_pdf_with_a_chart(cast, clinic_a):
    exporter = EXPORTS["clinic_summary"]
    frame = exporter.frame(clinic=clinic_a, filters=ExportFilters())
    html = pdf.report_html(exporter=exporter, clinic=clinic_a, filters=ExportFilters(), frame=frame)
    # Two charts: forms completed by month and the levels' histogram.
    assert "Clinic A" in html and "Form completion" in html and html.count("<svg") == 2
    data = produce(clinic_a, "clinic_summary", "pdf", ExportFilters())
    assert data.startswith(b"%PDF-") and pdf_pages(data) == 2
    # The histogram shows the patients of the period: only alice's has sessions in October.
    october = ExportFilters(start=date(2026, 10, 1))
    context = exporter.pdf_context(
        clinic=clinic_a, filters=october, frame=exporter.frame(clinic=clinic_a, filters=october)
    )
    assert context["n_levels"] == 1 and [s["n_patients"] for s in context["scales"]] == [1] * 5


def test_the_trajectory_chart_breaks_at_a_missing_score_and_escapes_its_title():
    svg = pdf.trajectory_svg(
        points=[(1, 4.0), (2, 4.5), (3, float("nan")), (4, 3.0), (5, 3.5)],
        level=4.0,
        events=[(4, 3.0, "rupture")],
        title="<script>",
    )
    assert svg.count("<polyline") == 2 and "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Rupture" in svg and "Long-run level" in svg
    assert "No answers yet." in pdf.trajectory_svg(points=[], level=None)


def test_the_histogram_counts_each_value_once():
    svg = pdf.histogram_svg(values=[1.0, 1.1, 4.9, 5.0, float("nan")], title="t", x_label="x")
    assert svg.count("<rect") == 2 and "t: 5 patients" in svg


# --- FHIR ------------------------------------------------------------------------------------------


def test_the_fhir_bundle_maps_the_instrument_and_references_patients_by_identifier(cast, clinic_a):
    bundle = json.loads(produce(clinic_a, "item_answers", "fhir", ExportFilters()))
    assert bundle["type"] == "collection"
    questionnaire = Questionnaire.model_validate(bundle["entry"][0]["resource"])
    assert questionnaire.status == "active" and len(questionnaire.item) == 12
    assert {item.type for item in questionnaire.item} == {"choice"}
    assert questionnaire.url.endswith("/fhir/Questionnaire/bordin-alliance")
    responses = [QuestionnaireResponse.model_validate(e["resource"]) for e in bundle["entry"][3:]]
    assert {r.questionnaire for r in responses} == {f"{questionnaire.url}|1"}
    assert {r.status for r in responses} == {"completed"}
    subjects = {r.subject.identifier.value for r in responses}
    assert subjects == {"EXT-9", str(cast["plain"].code)}  # type: ignore[attr-defined]
    text = json.dumps(bundle)
    for name in ("HYPERLINK", "B.B.", "CHARLIE", "Alice", "Bob"):
        assert name not in text
    first = responses[0]
    assert [i.linkId for i in first.item] == [str(n) for n in range(1, 13)]
    assert first.item[0].answer[0].valueCoding.code == "4"


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        ({"resourceType": "Bundle", "type": "pile"}, "Bundle.type: 'pile'"),
        ({"resourceType": "QuestionnaireResponse", "status": "done"}, "QuestionnaireResponse.status: 'done'"),
        ({"resourceType": "Questionnaire", "status": "final"}, "Questionnaire.status: 'final'"),
        (
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [{"linkId": "1", "type": "question"}],
            },
            "item[0].type: 'question'",
        ),
        (
            {"resourceType": "Questionnaire", "status": "active", "subjectType": ["Person"]},
            "subjectType: 'Person'",
        ),
    ],
)
def test_our_code_checks_catch_codes_the_library_lets_through(resource, problem):
    model = {"Bundle": Bundle, "Questionnaire": Questionnaire, "QuestionnaireResponse": QuestionnaireResponse}
    model[resource["resourceType"]].model_validate(resource)  # fhir.resources accepts it...
    problems = fhir.code_problems(resource)  # ...our check does not
    assert len(problems) == 1 and problem in problems[0]
    with pytest.raises(ValueError, match="Invalid FHIR codes"):
        fhir._validated(model[resource["resourceType"]], resource)


def test_every_code_the_bundle_uses_is_in_its_r4_value_set(cast, clinic_a):
    bundle = json.loads(produce(clinic_a, "item_answers", "fhir", ExportFilters()))
    assert bundle["type"] in fhir.BUNDLE_TYPES
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert kinds == {"Questionnaire", "CodeSystem", "QuestionnaireResponse"}  # each branch below is checked
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Questionnaire":
            assert resource["status"] in fhir.PUBLICATION_STATUSES
            assert {i["type"] for i in resource["item"]} <= fhir.ITEM_TYPES
        elif resource["resourceType"] == "CodeSystem":
            assert resource["status"] in fhir.PUBLICATION_STATUSES
            assert resource["content"] in fhir.CODESYSTEM_CONTENT
        else:
            assert resource["status"] in fhir.RESPONSE_STATUSES


# --- Formula guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("A.B.", "A.B."),
        ("", ""),
        (-2, -2),
        (-0.5, -0.5),
        (None, None),
    ],
)
def test_the_guard_prefixes_formula_text_and_leaves_numbers(value, expected):
    assert guard_cell(value) == expected


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_cells_are_guarded_in_spreadsheets(cast, clinic_a, fmt):
    read = csv_rows if fmt == "csv" else xlsx_rows
    answers = read(produce(clinic_a, "item_answers", fmt, ExportFilters()))
    assert {row[0] for row in answers[1:]} == {"'" + FORMULA_LABEL, "B.B."}
    flags = read(produce(clinic_a, "flags", fmt, ExportFilters()))
    note = flags[0].index("acknowledged_note")
    assert [row[note] for row in flags[1:]] == ["'" + FORMULA_NOTE]
    if fmt == "xlsx":
        scores = read(produce(clinic_a, "session_scores", fmt, ExportFilters()))
        state = scores[0].index("state")
        assert any(isinstance(row[state], float) and row[state] < 0 for row in scores[1:])


# --- Pseudonymisation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("identifier", "fmt"), [(i, f) for i, f in COMBINATIONS if f != "pdf"])
def test_a_pseudonymised_export_holds_no_label_external_id_note_or_name(cast, clinic_a, identifier, fmt):
    filters = filters_for(identifier, cast, pseudonymise=True)
    data = produce(clinic_a, identifier, fmt, filters)
    text = data.decode() if fmt != "xlsx" else json.dumps(xlsx_rows(data), default=str)
    for secret in ("HYPERLINK", "B.B.", "EXT-9", FORMULA_NOTE, "Alice", "Bob", "alice@", "bob@"):
        assert secret not in text, secret
    code = pseudonym(clinic=clinic_a, kind="patient", value=cast["formula"].code, key=filters.pseudonym_key)  # type: ignore[attr-defined]
    assert (code in text) == (identifier != "clinic_summary")  # the summary has no patient rows


def test_pseudonyms_are_keyed_stable_under_a_study_key_and_differ_between_clinics(cast, clinic_a, clinic_b):
    patient, key = cast["formula"], "a-study-key-of-32-characters-xx"
    first = pseudonym(clinic=clinic_a, kind="patient", value=patient.code, key=key)  # type: ignore[attr-defined]
    assert first == pseudonym(clinic=clinic_a, kind="patient", value=patient.code, key=key)  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert first != pseudonym(clinic=clinic_b, kind="patient", value=patient.code, key=key)  # type: ignore[attr-defined]
    study = ExportFilters(pseudonymise=True, pseudonym_key=key)
    rows = csv_rows(produce(clinic_a, "item_answers", "csv", study))
    again = csv_rows(
        produce(clinic_a, "item_answers", "csv", ExportFilters(pseudonymise=True, pseudonym_key=key))
    )
    assert rows == again  # the same study key: the two exports join
    other = csv_rows(produce(clinic_a, "item_answers", "csv", ExportFilters(pseudonymise=True)))
    assert not {r[0] for r in rows[1:]} & {r[0] for r in other[1:]}  # a key of its own: they do not
    assert rows[0] == ["patient", "external_id", "session", "date", "measure", "item", "value"]
    assert {r[1] for r in rows[1:]} == {""} and {r[3] for r in rows[1:]} >= {"2026-09-01"}  # dates kept


def test_pseudonymised_reports_leave_out_the_identifying_columns(cast, clinic_a):
    rows = csv_rows(produce(clinic_a, "flags", "csv", ExportFilters(pseudonymise=True)))
    assert not {"external_id", "acknowledged_by", "acknowledged_note"} & set(rows[0])
    assert "acknowledgement" in rows[0]


# --- Filters and clinic isolation ----------------------------------------------------------------------


def test_the_period_restricts_rows_by_session_date(cast, clinic_a):
    period = ExportFilters(start=date(2026, 9, 8), end=date(2026, 9, 22))
    rows = csv_rows(produce(clinic_a, "item_answers", "csv", period))[1:]
    assert {r[3] for r in rows} == {"2026-09-08", "2026-09-15", "2026-09-22"}
    assert len(rows) == 2 * 3 * 12
    scores = csv_rows(produce(clinic_a, "session_scores", "csv", period))
    day = scores[0].index("date")
    assert {r[day] for r in scores[1:]} == {"2026-09-08", "2026-09-15", "2026-09-22"}
    flags = csv_rows(produce(clinic_a, "flags", "csv", ExportFilters(start=date(2026, 10, 1))))
    assert len(flags) == 1


def test_a_period_ending_early_is_analysed_without_the_later_sessions(cast, clinic_a):
    early = ExportFilters(end=date(2026, 9, 15))
    levels = csv_rows(produce(clinic_a, "patient_levels", "csv", early))
    n = levels[0].index("n")
    assert {r[n] for r in levels[1:]} == {"3"}


@pytest.mark.parametrize(
    ("field", "expected"),
    [("therapist", {"'" + FORMULA_LABEL}), ("treatment", {"B.B."}), ("patient", {"B.B."})],
)
def test_therapist_treatment_and_patient_filters_restrict_rows(cast, clinic_a, alice, field, expected):
    filters = {
        "therapist": ExportFilters(therapist_id=alice.pk),
        "treatment": ExportFilters(treatment="exposure"),
        "patient": ExportFilters(patient_code=str(cast["plain"].code)),  # type: ignore[attr-defined]
    }[field]
    for identifier in ("item_answers", "session_scores", "patient_levels"):
        rows = csv_rows(produce(clinic_a, identifier, "csv", filters))
        assert {r[0] for r in rows[1:]} == expected, identifier


@pytest.mark.parametrize(("identifier", "fmt"), [(i, f) for i, f in COMBINATIONS if f in ("csv", "fhir")])
def test_clinic_b_never_appears_in_clinic_a_exports(cast, clinic_a, identifier, fmt):
    data = produce(clinic_a, identifier, fmt, filters_for(identifier, cast)).decode()
    for secret in ("CHARLIE-SECRET", "B-EXT", "Charlie", str(cast["other"].code)):  # type: ignore[attr-defined]
        assert secret not in data


def test_filters_pointing_into_another_clinic_are_refused(cast, clinic_a, dana, charlie):
    with pytest.raises(ApplicationError, match="no such patient"):
        export_services.export_run(
            clinic=clinic_a,
            user=dana,
            identifier="patient_report",
            fmt="pdf",
            filters=ExportFilters(patient_code=str(cast["other"].code)),
        )  # type: ignore[attr-defined]
    with pytest.raises(ApplicationError, match="does not work in this clinic"):
        export_services.export_run(
            clinic=clinic_a,
            user=dana,
            identifier="item_answers",
            fmt="csv",
            filters=ExportFilters(therapist_id=charlie.pk),
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"start": "2026-10-01", "end": "2026-09-01"}, "starts after it ends"),
        ({"start": "01/09/2026"}, "not a date"),
        ({"treatment": "hypnosis"}, "Unknown treatment"),
        ({"patient_code": "P.A."}, "not a patient code"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(data, message):
    with pytest.raises(ApplicationError, match=message):
        ExportFilters.from_json(data)


def test_filters_survive_a_trip_through_json():
    filters = ExportFilters(
        start=date(2026, 9, 1),
        end=date(2026, 9, 30),
        therapist_id=3,
        treatment="cbt",
        patient_code=str(uuid.uuid4()),
        pseudonymise=True,
    )
    assert ExportFilters.from_json(json.loads(json.dumps(filters.to_json()))) == filters


# --- Access and audit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "allowed"), [("dana", True), ("alice", False), ("bob", False), ("erin", False)]
)
def test_only_active_admins_of_the_clinic_may_export(cast, clinic_a, request, who, allowed):
    user = request.getfixturevalue(who)
    run = lambda: export_services.export_run(  # noqa: E731
        clinic=clinic_a, user=user, identifier="clinic_summary", fmt="csv", filters=ExportFilters()
    )
    if allowed:
        assert run().filename.endswith(".csv")
    else:
        with pytest.raises(PermissionDenied):
            run()
        with pytest.raises(PermissionDenied):
            export_jobs.export_start(
                clinic=clinic_a, user=user, identifier="flags", fmt="csv", filters=ExportFilters()
            )


def test_an_admin_whose_membership_ended_may_no_longer_export(cast, clinic_a, dana):
    Membership.objects.filter(user=dana).update(is_active=False)
    with pytest.raises(PermissionDenied):
        export_services.export_run(
            clinic=clinic_a, user=dana, identifier="flags", fmt="csv", filters=ExportFilters()
        )


def test_every_export_is_audited_with_who_what_filters_and_format(cast, clinic_a, dana, alice):
    filters = ExportFilters(start=date(2026, 9, 1), therapist_id=alice.pk, pseudonymise=True)
    export_services.export_run(
        clinic=clinic_a, user=dana, identifier="item_answers", fmt="xlsx", filters=filters
    )
    entry = LogEntry.objects.get(action=LogEntry.Action.ACCESS)
    assert (entry.actor, entry.object_pk, entry.content_type.model) == (dana, str(clinic_a.pk), "clinic")
    assert entry.additional_data == {
        "clinic": clinic_a.pk,
        "event": "export",
        "export": "item_answers",
        "format": "xlsx",
        "filters": filters.to_audit(),
        "via": "web",
        "job": None,
    }
    assert filters.pseudonym_key not in json.dumps(entry.additional_data)  # it would re-link the file
    assert entry.timestamp is not None


def test_an_export_that_cannot_be_made_is_refused_before_it_is_audited(cast, clinic_a, dana):
    with pytest.raises(ApplicationError, match="Choose the patient"):
        export_services.export_run(
            clinic=clinic_a, user=dana, identifier="patient_report", fmt="pdf", filters=ExportFilters()
        )
    with pytest.raises(ApplicationError, match="no export called"):
        export_services.export_run(
            clinic=clinic_a, user=dana, identifier="nope", fmt="csv", filters=ExportFilters()
        )
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


def test_a_refused_export_writes_no_data_and_no_audit_entry(cast, clinic_a, alice):
    with pytest.raises(PermissionDenied):
        export_services.export_run(
            clinic=clinic_a, user=alice, identifier="flags", fmt="csv", filters=ExportFilters()
        )
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


# --- Background jobs ---------------------------------------------------------------------------------


def test_a_job_runs_inline_without_a_worker_and_leaves_a_file(
    cast, clinic_a, dana, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = export_jobs.export_start(
            clinic=clinic_a, user=dana, identifier="item_answers", fmt="csv", filters=ExportFilters()
        )
        assert job.status == ExportJob.Status.QUEUED and job.progress == 0
    job.refresh_from_db()
    assert (job.status, job.progress, job.error) == ("done", 100, "")
    assert job.started_at and job.finished_at and job.finished_at >= job.started_at
    path, filename, content_type = export_services.export_file(job=job, user=dana)
    assert path.is_relative_to(media / "exports" / str(job.code)) and path.name == filename
    assert content_type.startswith("text/csv")
    assert len(csv_rows(path.read_bytes())) == 1 + 13 * 12
    events = list(
        LogEntry.objects.filter(action=LogEntry.Action.ACCESS)
        .order_by("timestamp")
        .values_list("additional_data__event", "additional_data__via", "additional_data__job")
    )
    assert events == [("export", "background job", str(job.code)), ("download", "web", str(job.code))]


def test_a_failing_exporter_fails_the_job_with_a_reason(cast, clinic_a, dana, media, monkeypatch):
    def broken(**kwargs: object) -> pd.DataFrame:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EXPORTS["session_scores"], "frame", broken)
    job = ExportJob.objects.create(
        clinic=clinic_a, requested_by=dana, exporter="session_scores", format="csv"
    )
    job = export_worker.export_job_run(job_id=job.pk)
    assert job.status == ExportJob.Status.FAILED and job.finished_at is not None
    assert job.error == "The export failed unexpectedly (RuntimeError); it has been logged."
    assert not (media / "exports" / str(job.code)).exists()
    with pytest.raises(ApplicationError):
        export_services.export_file(job=job, user=dana)


def test_a_job_that_cannot_be_done_fails_with_the_domain_message(cast, clinic_a, dana, media):
    job = ExportJob.objects.create(
        clinic=clinic_a, requested_by=dana, exporter="patient_report", format="pdf"
    )
    job = export_worker.export_job_run(job_id=job.pk)
    assert (job.status, job.error) == ("failed", "Choose the patient for a one-patient report.")


def test_a_job_checks_access_again_when_it_runs(cast, clinic_a, dana, media):
    job = ExportJob.objects.create(clinic=clinic_a, requested_by=dana, exporter="flags", format="csv")
    Membership.objects.filter(user=dana).update(is_active=False)
    job = export_worker.export_job_run(job_id=job.pk)
    assert job.status == "failed" and "admins" in job.error


def test_a_job_delivered_twice_runs_once(cast, clinic_a, dana, media):
    job = ExportJob.objects.create(clinic=clinic_a, requested_by=dana, exporter="flags", format="xlsx")
    assert export_worker.export_job_run(job_id=job.pk).status == "done"
    assert export_worker.export_job_run(job_id=job.pk).status == "done"
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS).count() == 1


def test_progress_is_written_as_rows_stream(cast, clinic_a, dana, media, monkeypatch):
    seen: list[int] = []
    original = export_worker._progress_writer

    def spy(job_id: int, total: int | None):
        write = original(job_id, total)

        def record(rows: int) -> None:
            write(rows)
            seen.append(ExportJob.objects.get(pk=job_id).progress)

        return record

    monkeypatch.setattr(export_worker, "_progress_writer", spy)
    monkeypatch.setattr(item_answers, "CHUNK_ROWS", 12)
    job = ExportJob.objects.create(clinic=clinic_a, requested_by=dana, exporter="item_answers", format="csv")
    assert export_worker.export_job_run(job_id=job.pk).progress == 100
    assert seen == sorted(seen) and 1 < seen[0] < seen[-1] <= 95 and len(set(seen)) > 3


@pytest.mark.parametrize("who", ["alice", "erin", "charlie"])
def test_jobs_are_404_for_anyone_but_the_clinics_admins(cast, clinic_a, dana, request, who):
    job = ExportJob.objects.create(clinic=clinic_a, requested_by=dana, exporter="flags", format="csv")
    assert export_jobs.export_job_get_for_user(user=dana, code=job.code) == job
    assert export_jobs.export_jobs_for_user(user=dana, clinic=clinic_a) == [job]
    user = request.getfixturevalue(who)
    with pytest.raises(Http404):
        export_jobs.export_job_get_for_user(user=user, code=job.code)
    with pytest.raises(Http404):
        export_jobs.export_job_get_for_user(user=dana, code="not-a-uuid")
    assert export_jobs.export_jobs_for_user(user=user, clinic=clinic_a) == []
    with pytest.raises(Http404):
        export_services.export_clinic_get_for_user(user=user, slug=clinic_a.slug)


def test_old_export_files_are_purged(cast, clinic_a, dana, media):
    job = ExportJob.objects.create(clinic=clinic_a, requested_by=dana, exporter="flags", format="csv")
    job = export_worker.export_job_run(job_id=job.pk)
    ExportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=8))
    assert export_services.export_files_purge(older_than=timedelta(days=7)) == 1
    assert not (media / "exports" / str(job.code)).exists()
    job.refresh_from_db()
    with pytest.raises(ApplicationError, match="has been removed"):
        export_services.export_file(job=job)


# --- RQ on the real Redis -------------------------------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def rq_backend(settings):
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 120}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    import django_rq

    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


@pytest.mark.django_db(transaction=True)
def test_the_rq_backend_runs_an_export_job_in_a_worker(
    clinic_a, alice, bob, dana, instrument, media, rq_backend
):
    from django_tasks_rq import Job
    from rq import SimpleWorker

    patient = Patient.objects.create(clinic=clinic_a, label="R.Q.", therapist=alice)
    course(patient, alice, instrument, treatment="cbt", totals=[4, 4, 3, 4])
    queued = rq_backend.count  # each stored form queued its episode's analysis
    assert queued == 4
    job = export_jobs.export_start(
        clinic=clinic_a, user=dana, identifier="item_answers", fmt="xlsx", filters=ExportFilters()
    )
    assert rq_backend.count == queued + 1
    job.refresh_from_db()
    assert job.status == "queued"  # enqueued, not run inline
    worker = SimpleWorker([rq_backend], connection=rq_backend.connection, job_class=Job)
    assert worker.work(burst=True)
    job.refresh_from_db()
    assert (job.status, job.progress) == ("done", 100)
    path, _, _ = export_services.export_file(job=job)
    assert len(xlsx_rows(path.read_bytes())) == 1 + 4 * 12
    assert rq_backend.count == 0


# --- The command ------------------------------------------------------------------------------------


def test_the_command_writes_the_report_and_audits_it_as_command_line(cast, clinic_a, alice, tmp_path):
    out = tmp_path / "answers.csv"
    call_command(
        "export_report",
        "item_answers",
        clinic="clinic-a",
        format="csv",
        out=str(out),
        therapist="alice@a.test",
        **{"from": "2026-09-01", "to": "2026-09-30"},
        pseudonymise=True,
    )
    rows = csv_rows(out.read_bytes())
    assert len(rows) == 1 + 5 * 12 and FORMULA_LABEL not in out.read_text()
    entry = LogEntry.objects.get(action=LogEntry.Action.ACCESS)
    assert entry.actor is None and entry.additional_data["via"] == "command line"
    assert entry.additional_data["filters"]["therapist_id"] == alice.pk
    assert "command line" in entry.changes_text


def test_the_command_writes_a_patient_report_pdf(cast, clinic_a, tmp_path):
    out = tmp_path / "report.pdf"
    call_command(
        "export_report", "patient_report", clinic="clinic-a", format="pdf", patient="EXT-9", out=str(out)
    )
    assert out.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"clinic": "nowhere"}, "No clinic"),
        ({"therapist": "charlie@b.test"}, "No member"),
        ({"patient": "CHARLIE-SECRET"}, "No patient"),
        ({"fmt": "pdf"}, "not 'pdf'"),
    ],
)
def test_the_command_explains_what_is_wrong(cast, tmp_path, args, message):
    options = {"clinic": "clinic-a", "format": args.pop("fmt", "csv"), "out": str(tmp_path / "x"), **args}
    with pytest.raises(CommandError, match=message):
        call_command("export_report", "item_answers", **options)
    assert not (tmp_path / "x").exists()


# --- Consistency with the analysis, and the round trip through the import ---------------------------------


def test_the_summary_without_a_period_is_the_analysis_summary():
    call_command("seed_demo", patients=12, today=TODAY)
    clinic = Clinic.objects.get(slug="demo")
    frame = EXPORTS["clinic_summary"].frame(clinic=clinic, filters=ExportFilters())
    episodes = list(Episode.objects.filter(patient__clinic=clinic).values_list("pk", flat=True))
    summary = analyse(scores_for_episodes(episode_ids=episodes), analysis_config(clinic=clinic)).summary
    summary = summary.rename(columns={"ceiling_share": "ceiling_rater_share"})
    shared = [name for name in summary.columns if name in frame.columns]
    assert len(shared) == 12
    pd.testing.assert_frame_equal(frame[shared], summary[shared].round(exports.DECIMALS), check_dtype=False)
    assert frame["sessions_held"].iloc[0] >= frame["forms_completed"].iloc[0] > 0


def test_an_item_export_imported_into_a_new_clinic_gives_the_same_levels_and_flags(tmp_path):
    call_command("seed_demo", patients=12, today=TODAY)
    demo = Clinic.objects.get(slug="demo")
    out = tmp_path / "answers.csv"
    call_command("export_report", "item_answers", clinic="demo", format="csv", out=str(out))

    fresh = Clinic.objects.create(slug="fresh", name="Fresh")
    therapist = staff_create(clinic=fresh, email="t@fresh.test", role="therapist")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        result = responses_import(clinic=fresh, file=handle, therapist=therapist)
    assert result.patients_created == demo.patients.count()

    config = analysis_config(clinic=demo)

    def analysed(clinic: Clinic) -> tuple[pd.DataFrame, pd.DataFrame]:
        label = dict(Episode.objects.filter(patient__clinic=clinic).values_list("pk", "patient__label"))
        analysis = analyse(scores_for_episodes(episode_ids=list(label)), config)

        def relabel(frame: pd.DataFrame) -> pd.DataFrame:
            out = frame.assign(patient=frame[c.PATIENT].astype("int64").map(label))
            return out.sort_values(
                ["patient", *[k for k in (c.SESSION, c.SCALE, c.KIND) if k in out]], ignore_index=True
            )

        return relabel(analysis.levels), relabel(analysis.events)

    levels, events = analysed(demo)
    levels_again, events_again = analysed(fresh)
    assert len(events) > 10
    pd.testing.assert_frame_equal(levels, levels_again)
    pd.testing.assert_frame_equal(events, events_again)


def test_purge_exports_removes_week_old_files_from_cron(clinic_a, dana, tmp_path, settings):
    import io

    from django.core.management import call_command

    from monitoring.models import ExportJob
    from tests.conftest import finished_export

    settings.MEDIA_ROOT = tmp_path
    old, new = finished_export(clinic_a, dana, tmp_path), finished_export(clinic_a, dana, tmp_path)
    ExportJob.objects.filter(pk=old.pk).update(finished_at=old.finished_at - timedelta(days=8))
    out = io.StringIO()
    call_command("purge_exports", stdout=out)
    assert out.getvalue().strip() == "1 export file(s) removed."
    assert (
        not (tmp_path / "exports" / str(old.code)).exists()
        and (tmp_path / "exports" / str(new.code)).exists()
    )
