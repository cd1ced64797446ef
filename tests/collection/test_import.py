from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from clinics.errors import ApplicationError
from clinics.models import Episode, Patient, Session
from monitoring.collection.importing import responses_import
from monitoring.models import Answer, Response

pytestmark = pytest.mark.django_db

WIDE_HEADER = "patient,external_id,session,date," + ",".join(f"item_{n}" for n in range(1, 13))


def wide(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join([WIDE_HEADER, *rows]) + "\n")


def long(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join(["patient,session,date,item,value", *rows]) + "\n")


def long_session(patient: str, session: int, day: str, values: list[int]) -> list[str]:
    return [f"{patient},{session},{day},{item},{value}" for item, value in enumerate(values, start=1)]


def counts() -> tuple[int, int, int, int, int]:
    return (
        Patient.objects.count(),
        Episode.objects.count(),
        Session.objects.count(),
        Response.objects.count(),
        Answer.objects.count(),
    )


def test_a_wide_file_round_trips(clinic_a, alice):
    result = responses_import(
        clinic=clinic_a,
        therapist=alice,
        file=wide(
            "M.K.,E-1,1,2026-09-01," + ",".join(["4"] * 12),
            "M.K.,E-1,2,2026-09-08," + ",".join(str(1 + n % 5) for n in range(12)),
            "J.S.,,1,2026-09-02," + ",".join(["5"] * 11) + ",",
        ),
    )
    assert (result.patients_created, result.sessions_created, result.responses_created) == (2, 3, 3)
    assert result.answers_created == 35
    mk = Patient.objects.get(external_id="E-1")
    assert (mk.label, mk.therapist, mk.clinic) == ("M.K.", alice, clinic_a)
    second = Response.objects.get(session__episode__patient=mk, session__number=2)
    assert sorted(second.answers.values_list("item__number", "value")) == [
        (n + 1, 1 + n % 5) for n in range(12)
    ]
    assert second.source == "import" and second.session.status == "held"
    assert Episode.objects.get(patient=mk).started_on.isoformat() == "2026-09-01"


def test_a_long_file_round_trips(clinic_a, alice):
    rows = long_session("A.B.", 1, "2026-09-01", [3] * 12) + long_session("A.B.", 2, "2026-09-08", [4] * 12)
    responses_import(clinic=clinic_a, therapist=alice, file=long(*rows))
    values = Answer.objects.order_by("response__session__number", "item__number").values_list(
        "response__session__number", "value"
    )
    assert list(values) == [(1, 3)] * 12 + [(2, 4)] * 12


def test_sessions_are_added_to_an_existing_patients_open_episode(clinic_a, alice, patient, episode, session):
    responses_import(
        clinic=clinic_a, therapist=alice, file=wide("P.A.,EXT-1,2,2026-09-08," + ",".join(["4"] * 12))
    )
    assert Patient.objects.count() == 1
    assert list(episode.sessions.values_list("number", flat=True)) == [1, 2]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            ["M.K.,,1,2026-09-01," + ",".join(["4"] * 11) + ",6"],
            "Line 2, column item_12: '6' is not an answer on the 1-5 scale.",
        ),
        (
            ["M.K.,,1,2026-09-01," + ",".join(["4"] * 11) + ",x"],
            "Line 2, column item_12: 'x' is not an answer on the 1-5 scale.",
        ),
        (
            ["M.K.,,1,01/09/2026," + ",".join(["4"] * 12)],
            "Line 2, column date: '01/09/2026' is not a date in the form YYYY-MM-DD.",
        ),
        (
            ["M.K.,,0,2026-09-01," + ",".join(["4"] * 12)],
            "Line 2, column session: '0' is not a session number (1 to 9999).",
        ),
        (
            ["M.K.,,1,2026-09-01," + ",".join(["4"] * 12), "M.K.,,1,2026-09-02," + ",".join(["4"] * 12)],
            "Line 3, column session: session 1 of M.K. appears twice (first on line 2).",
        ),
        (
            ["M.K.,,1,2026-09-01," + ",".join(["4"] * 9) + ",,,"],
            "Line 2: session 1 of M.K. has only 9 of 12 answers",
        ),
        (
            [",,1,2026-09-01," + ",".join(["4"] * 12)],
            "Line 2, column patient: no patient label or external_id.",
        ),
    ],
)
def test_one_bad_wide_row_aborts_the_whole_import_and_is_reported(clinic_a, alice, rows, expected):
    good = "Z.Z.,,1,2026-09-01," + ",".join(["4"] * 12)
    before = counts()
    with pytest.raises(ApplicationError) as caught:
        responses_import(clinic=clinic_a, therapist=alice, file=wide(*rows, good))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
    assert "Nothing was imported" in caught.value.message
    assert counts() == before


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["A.B.,1,2026-09-01,13,4"], "Line 2, column item: '13' is not an item of the instrument (1 to 12)."),
        (
            ["A.B.,1,2026-09-01,1,4", "A.B.,1,2026-09-01,1,5"],
            "Line 3, column item: item 1 of session 1 for A.B. is given twice.",
        ),
        (
            ["A.B.,1,2026-09-01,1,4", "A.B.,1,2026-09-02,2,5"],
            "Line 3, column date: session 1 of A.B. has date 2026-09-01 on line 2",
        ),
    ],
)
def test_one_bad_long_row_aborts_the_whole_import(clinic_a, alice, rows, expected):
    before = counts()
    with pytest.raises(ApplicationError) as caught:
        responses_import(clinic=clinic_a, therapist=alice, file=long(*rows))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
    assert counts() == before


def test_a_session_that_already_has_a_response_is_a_duplicate(
    clinic_a, alice, patient, episode, session, instrument
):
    from monitoring.collection.responses import response_create

    response_create(
        session=session, instrument=instrument, answers={n: 4 for n in range(1, 13)}, source="link"
    )
    before = counts()
    with pytest.raises(ApplicationError) as caught:
        responses_import(
            clinic=clinic_a, therapist=alice, file=wide("P.A.,EXT-1,1,2026-09-01," + ",".join(["2"] * 12))
        )
    assert caught.value.problems == ["Line 2: session 1 of EXT-1 already has a response."]
    assert counts() == before


def test_a_missing_column_is_named(clinic_a, alice):
    with pytest.raises(ApplicationError, match="missing required columns: date"):
        responses_import(
            clinic=clinic_a, therapist=alice, file=io.StringIO("patient,session,item,value\nA,1,1,4\n")
        )


def test_every_bad_row_is_reported_not_just_the_first(clinic_a, alice):
    with pytest.raises(ApplicationError) as caught:
        responses_import(
            clinic=clinic_a,
            therapist=alice,
            file=long("A,1,2026-09-01,1,9", "A,1,2026-09-01,2,0", "A,1,2026-13-01,3,1"),
        )
    assert [p.split(":")[0] for p in caught.value.problems[:3]] == [
        "Line 2, column value",
        "Line 3, column value",
        "Line 4, column date",
    ]


def test_the_command_imports_and_reports(tmp_path, clinic_a, alice, capsys):
    path = tmp_path / "answers.csv"
    path.write_text(wide("M.K.,,1,2026-09-01," + ",".join(["4"] * 12)).getvalue())
    call_command("import_responses", str(path), clinic="clinic-a", therapist="alice@a.test")
    assert "Imported 1 responses (12 answers): 1 new patients, 1 new sessions." in capsys.readouterr().out
    path.write_text(wide("M.K.,,2,2026-09-01," + ",".join(["4"] * 11) + ",7").getvalue())
    with pytest.raises(CommandError, match="column item_12: '7' is not an answer"):
        call_command("import_responses", str(path), clinic="clinic-a", therapist="alice@a.test")
    with pytest.raises(CommandError, match="No clinic with slug 'nope'"):
        call_command("import_responses", str(path), clinic="nope", therapist="alice@a.test")


def _flags_and_news(clinic):
    from monitoring.models import Flag, Notification

    flags = sorted(
        Flag.objects.filter(episode__patient__clinic=clinic).values_list(
            "episode__patient__label", "session__number", "scale", "kind", "magnitude", "threshold"
        )
    )
    news = sorted(
        Notification.objects.filter(flag__episode__patient__clinic=clinic).values_list(
            "user__email",
            "flag__episode__patient__label",
            "flag__session__number",
            "flag__scale",
            "flag__kind",
        )
    )
    return flags, news


def test_an_import_stores_the_same_flags_and_notifications_as_the_same_answers_through_forms(
    client, clinic_a, clinic_b, alice, charlie, django_capture_on_commit_callbacks
):
    """The import goes through the one write path: its episodes are analysed on commit, as each
    form's is. Both clinics start from the same stored reference values, so only the path differs."""
    from datetime import date, timedelta

    from clinics.models import Episode
    from monitoring.analytics.simulate import simulate_cohort
    from monitoring.collection.importing import items_import_csv
    from monitoring.collection.invitations import invitation_create
    from monitoring.flags.selectors import ATTENTION_WINDOW
    from monitoring.models import ClinicEstimate

    cohort = simulate_cohort(
        4,
        seed=5,
        sessions=(12, 12),
        scenarios={"rupture_unrepaired": 2, "task_decline": 1, "rupture_repair": 1},
    )
    first = date(2026, 1, 5)
    with django_capture_on_commit_callbacks(execute=True):
        responses_import(
            clinic=clinic_a, therapist=alice, file=items_import_csv(cohort.items, first_date=first)
        )
    reference = ClinicEstimate.objects.get(clinic=clinic_a)
    ClinicEstimate.objects.create(
        clinic=clinic_b,
        estimated_at=reference.estimated_at,
        parameters=reference.parameters,
        patients_used=reference.patients_used,
    )

    for label, rows in cohort.items.groupby("patient"):
        patient = Patient.objects.create(clinic=clinic_b, label=label, therapist=charlie)
        episode = Episode.objects.create(patient=patient, therapist=charlie, started_on=first)
        for row in rows.sort_values("session").itertuples(index=False):
            session = Session.objects.create(
                episode=episode,
                number=row.session,
                date=first + timedelta(weeks=row.session - 1),
                status="held",
            )
            _, token = invitation_create(session=session, created_by=charlie)
            answers = {f"item_{n}": str(getattr(row, f"item_{n}")) for n in range(1, 13)}
            with django_capture_on_commit_callbacks(execute=True):
                assert client.post(f"/f/{token}/", answers).status_code == 302

    imported_flags, imported_news = _flags_and_news(clinic_a)
    form_flags, form_news = _flags_and_news(clinic_b)
    assert ClinicEstimate.objects.filter(clinic=clinic_b).count() == 1  # the same values throughout
    assert imported_flags == form_flags
    assert {kind for *_, kind, _, _ in imported_flags} >= {"rupture", "unrepaired", "decline"}
    # Forms notify each event as it happens; an import stores a whole history at once and
    # notifies only the events still recent (the caseload's attention window), not old news.
    assert [n[1:] for n in imported_news] == [n[1:] for n in form_news if n[2] > 12 - ATTENTION_WINDOW]
    assert imported_news and len(form_news) > len(imported_news)


def measured(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join(["patient,session,date,measure,item,value", *rows]) + "\n")


def test_symptom_measures_import_beside_the_alliance(clinic_a, alice):
    alliance = [f"P.Q.,1,2026-09-01,,{item},4" for item in range(1, 13)]
    phq9 = [f"P.Q.,1,2026-09-01,phq9,{item},1" for item in range(1, 10)]
    gad7 = [f"P.Q.,1,2026-09-01,gad7,{item},2" for item in range(1, 7)]  # item 7 missing: prorated
    result = responses_import(clinic=clinic_a, file=measured(*alliance, *phq9, *gad7), therapist=alice)
    assert (result.responses_created, result.answers_created) == (3, 12 + 9 + 6)
    assert sorted(Response.objects.values_list("measure", flat=True)) == ["alliance", "gad7", "phq9"]
    again = measured(*[f"P.Q.,1,2026-09-01,phq9,{item},1" for item in range(1, 10)])
    with pytest.raises(ApplicationError) as error:
        responses_import(clinic=clinic_a, file=again, therapist=alice)
    assert "Line 2: session 1 of P.Q. already has a PHQ-9 response." in error.value.problems


def test_a_bad_symptom_row_names_its_line_and_measure(clinic_a, alice):
    rows = [
        "P.Q.,1,2026-09-01,core10,1,2",
        "P.Q.,1,2026-09-01,phq9,10,1",
        "P.Q.,1,2026-09-01,phq9,1,4",
        *[f"P.Q.,1,2026-09-01,gad7,{item},1" for item in range(1, 6)],
    ]
    before = counts()
    with pytest.raises(ApplicationError) as error:
        responses_import(clinic=clinic_a, file=measured(*rows), therapist=alice)
    problems = error.value.problems
    assert "Line 2, column measure: 'core10' is not a measure here (alliance, phq9, gad7)." in problems
    assert "Line 3, column item: '10' is not an item of PHQ-9 (1 to 9)." in problems
    assert "Line 4, column value: '4' is not an answer on the 0-3 scale of PHQ-9." in problems
    assert any("has only 5 of 7 GAD-7 answers; at least 6 are needed" in p for p in problems)
    assert counts() == before
