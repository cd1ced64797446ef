"""The symptom measures in the exports (issue 15): per-session PHQ-9 / GAD-7 totals and bands in
``session_scores``, the symptoms section and the safety alerts of the one-patient report, and the
outcome rates and alliance-outcome sentences of the clinic report, each also pseudonymised.

The cast: clinic A asks PHQ-9 and GAD-7. Alice's patient (label ``S.Y.``, external id ``EXT-7``)
has four alliance sessions; PHQ-9 12 at session 1, 14 at session 2 with a risk answer (followed up
by alice with a note), 4 at session 4; GAD-7 9 at session 1 only. Bob's patient finished an episode
with PHQ-9 15 then 5 (recovered). Clinic B's patient must never appear.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from clinics.models import Episode, Patient, Session
from monitoring.collection.responses import response_enter
from monitoring.collection.safety import safety_follow_up
from monitoring.exports import EXPORTS, ExportFilters, pdf, pseudonym
from monitoring.models import SafetyAlert
from monitoring.outcomes.selectors import MIN_LINK_PATIENTS, MIN_RATE_EPISODES
from tests.exports.test_exports import course, csv_rows, pdf_pages, produce, xlsx_rows

pytestmark = pytest.mark.django_db

NOTE = "+Rang her; safe, plan agreed"  # free text: identifying, and a formula to guard
SYMPTOM_COLUMNS = ["phq9", "phq9_band", "gad7", "gad7_band"]
START = date(2026, 9, 1)


def phq9(total: int, *, risk: int = 0) -> dict[int, int]:
    """PHQ-9 answers with this total; item 9 (the risk item) is ``risk``."""
    rest, values = total - risk, {}
    for item in range(1, 9):
        values[item] = min(3, rest)
        rest -= values[item]
    assert rest == 0
    return {**values, 9: risk}


def gad7(total: int) -> dict[int, int]:
    rest, values = total, {}
    for item in range(1, 8):
        values[item] = min(3, rest)
        rest -= values[item]
    return values


@pytest.fixture
def symptoms(clinic_a, clinic_b, alice, bob, charlie, instrument) -> dict[str, object]:
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.save()
    patient = Patient.objects.create(clinic=clinic_a, label="S.Y.", external_id="EXT-7", therapist=alice)
    episode = course(patient, alice, instrument, treatment="cbt", totals=[4, 4, 3, 4])
    sessions = {s.number: s for s in episode.sessions.all()}
    for number, answers in ((1, phq9(12)), (2, phq9(14, risk=1)), (4, phq9(4))):
        response_enter(session=sessions[number], rater="patient", answers=answers, user=alice, measure="phq9")
    response_enter(session=sessions[1], rater="patient", answers=gad7(9), user=alice, measure="gad7")
    alert = SafetyAlert.objects.get(episode=episode)
    safety_follow_up(alert=alert, user=alice, follow_up="contacted", note=NOTE)

    finished_patient = Patient.objects.create(clinic=clinic_a, label="F.N.", therapist=bob)
    finished = Episode.objects.create(
        patient=finished_patient,
        therapist=bob,
        treatment="exposure",
        started_on=START,
        ended_on=date(2026, 11, 30),
    )
    for number, total in ((1, 15), (2, 5)):
        held = Session.objects.create(
            episode=finished, number=number, date=START + timedelta(weeks=number), status="held"
        )
        response_enter(session=held, rater="patient", answers=phq9(total), user=bob, measure="phq9")

    other = Patient.objects.create(clinic=clinic_b, label="CHARLIE-SECRET", therapist=charlie)
    other_episode = course(other, charlie, instrument, treatment="cbt", totals=[4, 4])
    response_enter(
        session=other_episode.sessions.get(number=1),
        rater="patient",
        answers=phq9(20),
        user=charlie,
        measure="phq9",
    )
    return {"patient": patient, "episode": episode, "alert": alert, "finished": finished}


def patient_html(clinic, patient, **filters: object) -> str:
    exporter = EXPORTS["patient_report"]
    chosen = ExportFilters(patient_code=str(patient.code), **filters)  # type: ignore[arg-type]
    frame = exporter.frame(clinic=clinic, filters=chosen)
    return pdf.report_html(exporter=exporter, clinic=clinic, filters=chosen, frame=frame)


#: A study key, so pseudonyms can be recomputed in the tests (each export draws its own otherwise).
STUDY_KEY = "study-key-of-these-tests"


def clinic_context(clinic, **filters: object) -> dict[str, object]:
    exporter = EXPORTS["clinic_summary"]
    chosen = ExportFilters(**filters)  # type: ignore[arg-type]
    return exporter.pdf_context(
        clinic=clinic, filters=chosen, frame=exporter.frame(clinic=clinic, filters=chosen)
    )


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- session_scores ---------------------------------------------------------------------------------


def test_session_scores_carry_each_sessions_symptom_totals_and_bands(symptoms, clinic_a):
    rows = csv_rows(produce(clinic_a, "session_scores", "csv", ExportFilters()))
    header = rows[0]
    assert header == [*EXPORTS["session_scores"].column_names(), *SYMPTOM_COLUMNS]
    at = {name: header.index(name) for name in ("patient", "session", "scale", *SYMPTOM_COLUMNS)}
    by_session = {
        int(r[at["session"]]): [r[at[name]] for name in SYMPTOM_COLUMNS]
        for r in rows[1:]
        if r[at["patient"]] == "S.Y." and r[at["scale"]] == "total"
    }
    assert by_session == {
        1: ["12.0", "moderate", "9.0", "mild"],
        2: ["14.0", "moderate", "", ""],
        3: ["", "", "", ""],
        4: ["4.0", "minimal", "", ""],
    }
    # Every scale row of a session repeats its symptom values.
    first = [r for r in rows[1:] if r[at["patient"]] == "S.Y." and r[at["session"]] == "1"]
    assert len(first) == 5 and {r[at["phq9"]] for r in first} == {"12.0"}
    assert "CHARLIE-SECRET" not in str(rows)


def test_session_scores_keep_numbers_as_numbers_and_leave_unanswered_cells_empty_in_xlsx(symptoms, clinic_a):
    sheet = xlsx_rows(produce(clinic_a, "session_scores", "xlsx", ExportFilters()))
    at = {name: sheet[0].index(name) for name in ("patient", "session", "scale", *SYMPTOM_COLUMNS)}
    total = {
        row[at["session"]]: [row[at[name]] for name in SYMPTOM_COLUMNS]
        for row in sheet[1:]
        if row[at["patient"]] == "S.Y." and row[at["scale"]] == "total"
    }
    assert total[1] == [12, "moderate", 9, "mild"]
    assert total[3] == [None, "", None, ""]  # no number; an empty band


def test_session_scores_follow_the_period_and_a_clinic_without_answers_has_empty_columns(
    symptoms, clinic_a, clinic_b
):
    period = ExportFilters(start=date(2026, 9, 8), end=date(2026, 9, 15))
    rows = csv_rows(produce(clinic_a, "session_scores", "csv", period))
    at = {name: rows[0].index(name) for name in ("session", "scale", "phq9", "phq9_band")}
    assert {
        (r[at["session"]], r[at["phq9"]], r[at["phq9_band"]]) for r in rows[1:] if r[at["scale"]] == "total"
    } == {
        ("2", "14.0", "moderate"),
        ("3", "", ""),
    }
    clinic_b_rows = csv_rows(produce(clinic_b, "session_scores", "csv", ExportFilters()))
    at_b = {name: clinic_b_rows[0].index(name) for name in ("session", "phq9", "phq9_band", "gad7")}
    assert [
        (r[at_b["session"]], r[at_b["phq9"]], r[at_b["phq9_band"]], r[at_b["gad7"]])
        for r in clinic_b_rows[1:6]
    ] == [("1", "20.0", "severe", "")] * 5


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_pseudonymised_session_scores_keep_the_symptoms_and_name_nobody(symptoms, clinic_a, fmt):
    data = produce(clinic_a, "session_scores", fmt, ExportFilters(pseudonymise=True, pseudonym_key=STUDY_KEY))
    rows = csv_rows(data) if fmt == "csv" else [[str(v) for v in row] for row in xlsx_rows(data)]
    text = str(rows)
    for secret in ("S.Y.", "EXT-7", "F.N.", "Alice", "Bob", "alice@", NOTE):
        assert secret not in text, secret
    assert "external_id" not in rows[0] and rows[0][-4:] == SYMPTOM_COLUMNS
    code = pseudonym(clinic=clinic_a, kind="patient", value=symptoms["patient"].code, key=STUDY_KEY)  # type: ignore[attr-defined]
    assert code in text and "moderate" in text


# --- patient_report ---------------------------------------------------------------------------------


def test_the_patient_report_shows_the_symptoms_and_the_followed_up_safety_alert(symptoms, clinic_a):
    html = patient_html(clinic_a, symptoms["patient"])
    text = text_of(html)
    assert "Symptoms" in text and "Safety alerts" in text
    phq9_row = re.search(
        r"PHQ-9 12 \(session 1, moderate\) 4 \(session 4\) minimal -8 reliably improved (\S+ \S+)", text
    )
    assert phq9_row, text
    assert phq9_row.group(1) == "on track"
    assert re.search(r"GAD-7 9 \(session 1, mild\) 9 \(session 1\) mild \u2013 one score only", text), text
    # The per-session table: every session with a score, each measure's total and band.
    assert "1 2026-09-01 12 (moderate) 9 (mild)" in text
    assert "2 2026-09-08 14 (moderate) \u2013" in text
    assert "4 2026-09-22 4 (minimal) \u2013" in text
    # The alert, its answer and its follow-up with who and the note.
    assert "Session 2 (2026-09-08) · item 9: “Several days”" in text
    assert "Contacted the patient by Alice A on" in text and NOTE in text
    assert "Open:" not in text


def test_an_open_alert_and_a_course_off_track_are_said_plainly(symptoms, clinic_a, alice, instrument):
    patient = Patient.objects.create(clinic=clinic_a, label="R.W.", therapist=alice)
    episode = course(patient, alice, instrument, treatment="cbt", totals=[4, 3, 3, 3])
    for number, answers in ((1, phq9(10)), (4, phq9(24, risk=3))):
        response_enter(
            session=episode.sessions.get(number=number),
            rater="patient",
            answers=answers,
            user=alice,
            measure="phq9",
        )
    text = text_of(patient_html(clinic_a, patient))
    assert re.search(
        r"PHQ-9 10 \(session 1, moderate\) 24 \(session 4\) severe \+14 reliably deteriorated not on track",
        text,
    ), text
    assert "Session 4 (2026-09-22) · item 9: “Nearly every day”" in text
    assert "Open: no follow-up recorded yet." in text


def test_the_patient_report_shows_the_symptoms_as_of_the_periods_end(symptoms, clinic_a):
    text = text_of(patient_html(clinic_a, symptoms["patient"], end=date(2026, 9, 15)))
    assert re.search(
        r"PHQ-9 12 \(session 1, moderate\) 14 \(session 2\) moderate \+2 no reliable change", text
    ), text
    assert "4 (minimal)" not in text
    assert "item 9" in text  # session 2 is in the period
    before = text_of(patient_html(clinic_a, symptoms["patient"], end=date(2026, 9, 1)))
    assert "No safety alerts in this period." in before and "item 9" not in before
    assert "one score only" in before


def test_the_pseudonymised_patient_report_keeps_the_follow_up_but_not_who_or_the_note(symptoms, clinic_a):
    html = patient_html(clinic_a, symptoms["patient"], pseudonymise=True)
    text = text_of(html)
    assert "Contacted the patient on" in text and "Several days" in text
    for secret in ("S.Y.", "EXT-7", "Alice", NOTE, "Rang her"):
        assert secret not in html, secret


def test_a_clinic_without_symptom_measures_shows_no_symptoms_section(clinic_a, alice, instrument):
    patient = Patient.objects.create(clinic=clinic_a, label="N.S.", therapist=alice)
    course(patient, alice, instrument, treatment="cbt", totals=[4, 4])
    text = text_of(patient_html(clinic_a, patient))
    assert "Symptoms" not in text and "Safety alerts" not in text


def test_the_patient_report_pdf_renders_with_the_new_sections(symptoms, clinic_a):
    filters = ExportFilters(patient_code=str(symptoms["patient"].code))  # type: ignore[attr-defined]
    data = produce(clinic_a, "patient_report", "pdf", filters)
    assert data.startswith(b"%PDF-") and pdf_pages(data) >= 2


# --- clinic_summary ---------------------------------------------------------------------------------


def test_the_clinic_report_has_the_outcome_rates_and_the_alliance_outcome_sentences(symptoms, clinic_a):
    outcomes = clinic_context(clinic_a)["outcomes"]
    groups = {g["label"]: g["rows"] for g in outcomes["groups"]}  # type: ignore[index]
    assert list(groups) == ["All finished episodes", "By quarter of ending", "By therapist", "By treatment"]
    assert groups["All finished episodes"] == [
        {
            "group": "All finished episodes",
            "episodes": 1,
            "cases": 1,
            "recovery": "100%",
            "reliable_improvement": "100%",
            "reliable_deterioration": "0%",
            "reliable_recovery": "100%",
            "small": True,
        }
    ]
    assert [r["group"] for r in groups["By quarter of ending"]] == ["2026 Q4"]
    assert [r["group"] for r in groups["By therapist"]] == ["Bob A"]
    assert [r["group"] for r in groups["By treatment"]] == ["Exposure therapy"]
    assert outcomes["small"] == MIN_RATE_EPISODES  # type: ignore[index]
    reason = (
        "Too few data yet: 1 patients and 1 pairs of consecutive sessions with both measures; the "
        f"report states an association from {MIN_LINK_PATIENTS} patients and 100 pairs."
    )
    # S.Y. has PHQ-9 at sessions 1, 2 and 4: one pair (1 -> 2); F.N. has no alliance answers.
    assert outcomes["links"] == [  # type: ignore[index]
        f"{scale}: {reason}" for scale in ("Total alliance", "Goal agreement", "Task agreement", "Bond")
    ]


def test_the_clinic_report_pdf_says_small_numbers_and_why_there_is_no_association(symptoms, clinic_a):
    exporter = EXPORTS["clinic_summary"]
    html = pdf.report_html(
        exporter=exporter,
        clinic=clinic_a,
        filters=ExportFilters(),
        frame=exporter.frame(clinic=clinic_a, filters=ExportFilters()),
    )
    text = text_of(html)
    assert "Symptom outcomes" in text and "Bob A (small numbers)" in text
    assert f"a group of fewer than {MIN_RATE_EPISODES} episodes" in text
    assert "Does a better session than usual come before fewer symptoms here?" in text
    assert "Too few data yet" in text
    data = produce(clinic_a, "clinic_summary", "pdf", ExportFilters())
    assert data.startswith(b"%PDF-") and pdf_pages(data) >= 2


def test_the_outcome_rates_follow_the_period_and_the_filters(symptoms, clinic_a, alice):
    later = clinic_context(clinic_a, start=date(2026, 12, 1))["outcomes"]
    assert later["groups"] == []  # type: ignore[index]  # nothing ended then
    mine = clinic_context(clinic_a, therapist_id=alice.pk)["outcomes"]
    assert mine["groups"] == []  # type: ignore[index]  # alice's episode is open
    text = text_of(
        pdf.report_html(
            exporter=EXPORTS["clinic_summary"],
            clinic=clinic_a,
            filters=ExportFilters(start=date(2026, 12, 1)),
            frame=EXPORTS["clinic_summary"].frame(
                clinic=clinic_a, filters=ExportFilters(start=date(2026, 12, 1))
            ),
        )
    )
    assert "No episode with two or more symptom scores ended in this period." in text


def test_the_pseudonymised_clinic_report_names_therapists_by_their_codes(symptoms, clinic_a, bob):
    outcomes = clinic_context(clinic_a, pseudonymise=True, pseudonym_key=STUDY_KEY)["outcomes"]
    groups = {g["label"]: g["rows"] for g in outcomes["groups"]}  # type: ignore[index]
    assert [r["group"] for r in groups["By therapist"]] == [
        pseudonym(clinic=clinic_a, kind="therapist", value=bob.pk, key=STUDY_KEY)
    ]
    exporter = EXPORTS["clinic_summary"]
    filters = ExportFilters(pseudonymise=True)
    html = pdf.report_html(
        exporter=exporter,
        clinic=clinic_a,
        filters=filters,
        frame=exporter.frame(clinic=clinic_a, filters=filters),
    )
    for secret in ("Bob", "Alice", "S.Y.", "F.N."):
        assert secret not in html, secret


def test_a_clinic_without_symptom_measures_has_no_outcome_section(clinic_b, charlie, instrument):
    patient = Patient.objects.create(clinic=clinic_b, label="X.", therapist=charlie)
    course(patient, charlie, instrument, treatment="cbt", totals=[4, 4])
    assert clinic_context(clinic_b)["outcomes"] is None
