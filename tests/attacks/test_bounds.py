"""Finding 5 of issue 14, the inputs: every length and range is checked before the database, with
a message, by the pages, the API, the CSV import and the services behind them. Probed on
PostgreSQL, where each of these was a traceback (a 200-character label, a 150-character external
id, session 99999999999, a NUL byte) or silently stored (dates in year 1 and 9999, a link expiry
of 2,000,000,000 hours); the tests run on both databases (SQLite stored them all)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Clinic, Episode, Patient, Session, patient_search
from clinics.validation import MAX_SESSION_NUMBER, MIN_DATE, latest_date
from monitoring.collection.importing import responses_import
from monitoring.collection.invitations import invitation_create
from monitoring.models import ApiToken, Flag
from tests.api.conftest import Api, make_token, membership_code
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

HEADER = "patient,external_id,session,date," + ",".join(f"item_{n}" for n in range(1, 13))
FIVES = ",".join(["5"] * 12)
NUL = "\x00"


def wide(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join([HEADER, *rows]) + "\n")


def import_problems(clinic: Clinic, therapist, *rows: str) -> list[str]:
    with pytest.raises(ApplicationError) as caught:
        responses_import(clinic=clinic, therapist=therapist, file=wide(*rows))
    assert Patient.objects.count() == 0 and Session.objects.count() == 0
    return caught.value.problems


# --- The CSV import: line and column for each bad cell --------------------------------------------


def test_import_refuses_a_label_longer_than_the_column(clinic_a, alice):
    problems = import_problems(clinic_a, alice, f"{'L' * 200},,1,2026-09-01,{FIVES}")
    assert problems == ["Line 2, column patient: 200 characters; at most 60 fit."]


def test_import_refuses_an_external_id_longer_than_the_column(clinic_a, alice):
    problems = import_problems(clinic_a, alice, f"M.K.,{'E' * 150},1,2026-09-01,{FIVES}")
    assert problems == ["Line 2, column external_id: 150 characters; at most 100 fit."]


@pytest.mark.parametrize("number", ["99999999999", str(MAX_SESSION_NUMBER + 1), "0", "-3"])
def test_import_refuses_a_session_number_out_of_range(clinic_a, alice, number):
    problems = import_problems(clinic_a, alice, f"M.K.,,{number},2026-09-01,{FIVES}")
    assert problems == [
        f"Line 2, column session: '{number}' is not a session number (1 to {MAX_SESSION_NUMBER})."
    ]


@pytest.mark.parametrize("text", [f"M.{NUL}K.", "M.\x1bK.", "M.\u202eK."])
def test_import_refuses_control_characters_in_a_label(clinic_a, alice, text):
    problems = import_problems(clinic_a, alice, f"{text},,1,2026-09-01,{FIVES}")
    assert len(problems) == 1
    assert problems[0].startswith("Line 2, column patient: contains an invisible control character (U+")


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_import_refuses_implausible_dates(clinic_a, alice, day):
    problems = import_problems(clinic_a, alice, f"M.K.,,1,{day},{FIVES}")
    assert problems == [
        f"Line 2, column date: {day} is not a plausible date "
        f"(from {MIN_DATE.isoformat()} to {latest_date().isoformat()})."
    ]


def test_import_still_takes_the_edges_of_the_ranges(clinic_a, alice):
    result = responses_import(
        clinic=clinic_a,
        therapist=alice,
        file=wide(f"{'L' * 60},{'E' * 100},{MAX_SESSION_NUMBER},1900-01-01,{FIVES}"),
    )
    assert result.responses_created == 1
    assert Session.objects.get().number == MAX_SESSION_NUMBER


# --- The services: the same bounds for every caller ---------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("label", "L" * 200),
        ("external_id", "E" * 150),
        ("contact_phone", "1" * 40),
        ("label", f"P{NUL}Q"),
        ("external_id", "E\x07"),
    ],
)
def test_patient_create_refuses_text_that_does_not_fit(clinic_a, alice, field, value):
    values = {"label": "K.L.", field: value}
    with pytest.raises(ApplicationError) as caught:
        clinic_services.patient_create(clinic=clinic_a, therapist=alice, **values)
    assert caught.value.code == "invalid"
    assert not Patient.objects.exists()


def test_patient_update_refuses_text_that_does_not_fit(patient):
    with pytest.raises(ApplicationError):
        clinic_services.patient_update(
            patient=patient,
            label="L" * 61,
            external_id="",
            language="en",
            contact_email="",
            contact_phone="",
        )
    patient.refresh_from_db()
    assert patient.label == "P.A."


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1899, 12, 31), date(9999, 12, 31)])
def test_episodes_and_sessions_refuse_implausible_dates(patient, episode, bob, day):
    with pytest.raises(ApplicationError):
        clinic_services.session_create(episode=episode, date=day)
    with pytest.raises(ApplicationError):
        clinic_services.episode_close(episode=episode, on=day)
    with pytest.raises(ApplicationError):
        clinic_services.patient_transfer(patient=patient, therapist=bob, on=day)
    episode.ended_on = date(2026, 10, 1)
    episode.save()
    with pytest.raises(ApplicationError):
        clinic_services.episode_open(patient=patient, started_on=day)
    assert Episode.objects.count() == 1 and Session.objects.count() == 0


def test_session_update_refuses_an_implausible_date(session, alice):
    from monitoring.collection.sessions import session_update

    with pytest.raises(ApplicationError):
        session_update(session=session, user=alice, on=date(9999, 12, 31))
    session.refresh_from_db()
    assert session.date == date(2026, 9, 1)


def test_the_models_say_the_same(clinic_a, alice):
    patient = Patient(clinic=clinic_a, label=f"A{NUL}", external_id="E" * 101, therapist=alice)
    with pytest.raises(ValidationError) as caught:
        patient.full_clean()
    assert set(caught.value.message_dict) == {"label", "external_id"}
    episode = Episode(patient=Patient(), therapist=alice, started_on=date(1, 1, 1))
    with pytest.raises(ValidationError) as caught:
        episode.clean_fields(exclude=["patient"])
    assert "started_on" in caught.value.message_dict


# --- Pages ---------------------------------------------------------------------------------------


def patient_form(**changes: object) -> dict[str, object]:
    return {
        "label": "K.L.",
        "external_id": "",
        "language": "en",
        "treatment": "cbt",
        "started_on": "2026-11-02",
        "contact_email": "",
        "contact_phone": "",
        **changes,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("started_on", "0001-01-01", "not a plausible date"),
        ("started_on", "9999-12-31", "not a plausible date"),
        ("label", "K.\x1bL.", "invisible control character"),
        ("label", f"K.{NUL}L.", "Null characters are not allowed"),
        ("label", "L" * 200, "at most 60 characters"),
    ],
)
def test_the_admin_patient_form_refuses_with_a_message(client, dana, alice, field, value, message):
    sign_in(client, dana)
    page = client.post("/clinic/clinic-a/patients/", patient_form(therapist=alice.pk, **{field: value}))
    assert page.status_code == 400
    assert message in page.content.decode()
    assert not Patient.objects.exists()


@pytest.mark.parametrize("form", ["open", "close", "discharge", "transfer"])
def test_the_admin_patient_page_refuses_implausible_dates(client, dana, bob, patient, episode, form):
    sign_in(client, dana)
    if form == "open":
        episode.ended_on = date(2026, 10, 1)
        episode.save()
    data = {
        "form": form,
        "on": "9999-12-31",
        "started_on": "9999-12-31",
        "treatment": "cbt",
        "therapist": bob.pk,
    }
    page = client.post(f"/clinic/clinic-a/patients/{patient.code}/", data)
    assert page.status_code == 400
    assert "not a plausible date" in page.content.decode()
    assert Episode.objects.count() == 1
    assert Episode.objects.get().ended_on == (date(2026, 10, 1) if form == "open" else None)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_patient_page_refuses_a_session_on_an_implausible_date(client, alice, patient, episode, day):
    sign_in(client, alice)
    page = client.post(f"/patients/{patient.code}/sessions/", {"date": day}, follow=True)
    assert page.status_code == 200
    assert "not a plausible date" in page.content.decode()
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "a" * 64 + "@" + "b" * 240 + ".test"}, "at most 254 characters"),
        ({"email": "new@a.test", "name": "N" * 151}, "at most 150 characters"),
        ({"email": "new@a.test", "name": "N\x1b"}, "invisible control character"),
    ],
)
def test_the_staff_invitation_bounds_email_and_name(client, dana, data, message):
    """An address of 254 to 320 characters passed Django's email validator and not the column."""
    from clinics.models import StaffInvitation

    sign_in(client, dana)
    page = client.post("/clinic/clinic-a/staff/", {"role": "therapist", **data})
    assert page.status_code == 400
    assert message in page.content.decode()
    assert not StaffInvitation.objects.exists()
    with pytest.raises(ApplicationError):
        clinic_services.staff_invite(
            clinic=Clinic.objects.get(),
            role="therapist",
            invited_by=dana,
            join_url=str,
            **{"name": "", **data},
        )


def test_the_join_page_bounds_the_name(client, clinic_a, dana):
    """The name chosen on the invitation page becomes first_name and last_name (150 each)."""
    from django.contrib.auth.models import User

    _, url = clinic_services.staff_invite(
        clinic=clinic_a,
        email="new@a.test",
        role="therapist",
        invited_by=dana,
        join_url=lambda t: f"/join/{t}/",
    )
    password = "a-long-and-unusual-passphrase"
    for name in ["N" * 151, "N\x1bO"]:
        page = client.post(url, {"name": name, "password": password, "password_again": password})
        assert page.status_code == 400
    assert not User.objects.filter(email="new@a.test").exists()


def test_a_flag_note_with_a_nul_byte_is_refused_with_a_message(client, alice, session, episode):
    flag = Flag.objects.create(
        episode=episode, session=session, scale="total", kind="rupture", magnitude=1, explanation="."
    )
    sign_in(client, alice)
    page = client.post(
        f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "discussed", "note": f"a{NUL}b"}, follow=True
    )
    assert page.status_code == 200
    assert "invisible control character" in page.content.decode()
    flag.refresh_from_db()
    assert flag.acknowledgement == ""


def test_a_flag_note_keeps_its_line_breaks(client, alice, session, episode):
    flag = Flag.objects.create(
        episode=episode, session=session, scale="total", kind="rupture", magnitude=1, explanation="."
    )
    sign_in(client, alice)
    client.post(
        f"/flags/{flag.code}/acknowledge/", {"acknowledgement": "discussed", "note": "one\r\ntwo\tthree"}
    )
    flag.refresh_from_db()
    assert flag.acknowledged_note == "one\r\ntwo\tthree"


@pytest.mark.parametrize("days", ["99999999", "1000000000000", "-1", "x", "max+1"])
def test_the_token_page_refuses_a_lifetime_out_of_range(client, alice, clinic_a, settings, days):
    """The probe: ``days=99999999`` was a 500 (the date overflowed). The maximum itself is issue
    14's item 2 (tokens always expire), tested with the tokens."""
    max_days = settings.API_TOKEN_MAX_DAYS
    days = str(max_days + 1) if days == "max+1" else days
    sign_in(client, alice)
    page = client.post(
        "/account/api-tokens/", {"clinic": str(clinic_a.code), "name": "EHR", "days": days}, follow=True
    )
    assert page.status_code == 200
    assert f"from 1 to {max_days}" in page.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("url", ["/", "/clinic/clinic-a/patients/"])
@pytest.mark.parametrize("query", [f"P.{NUL}", "P" * 5000])
def test_a_search_with_a_nul_byte_or_longer_than_any_value_finds_no_one(client, dana, patient, url, query):
    """PostgreSQL refuses a NUL byte as a query parameter: the search was a 500 there."""
    sign_in(client, dana)
    page = client.get(url, {"q": query})
    assert page.status_code == 200
    assert Patient.objects.filter(patient_search(query)).count() == 0
    assert Patient.objects.filter(patient_search("P.A")).count() == 1


# --- Clinic settings -----------------------------------------------------------------------------


def settings_form(clinic: Clinic) -> dict[str, object]:
    """What the settings page posts when nothing is changed."""
    from monitoring.clinic_admin.forms import ClinicSettingsForm

    form = ClinicSettingsForm(instance=clinic)
    data: dict[str, object] = {}
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[name] = "on"
        elif value not in (None, False):
            data[name] = value
    return data


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("link_expiry_hours", 2_000_000_000),
        ("link_expiry_hours", Clinic.MAX_LINK_EXPIRY_HOURS + 1),
        ("reminder_delay_hours", 2_000_000_000),
        ("reminder_delay_hours", Clinic.MAX_LINK_EXPIRY_HOURS + 1),
        ("retention_years", 2_000_000_000),
        ("retention_years", 0),
        ("retention_years", Clinic.MAX_RETENTION_YEARS + 1),
        ("idle_timeout_minutes", 2_000_000_000),
        ("idle_timeout_minutes", Clinic.MAX_IDLE_TIMEOUT_MINUTES + 1),
        ("name", "N" * 201),
        ("name", f"A{NUL}"),
        ("name", "A\x1b[2J"),
    ],
)
def test_clinic_settings_have_sane_maximums(client, dana, clinic_a, field, value):
    sign_in(client, dana)
    before = getattr(clinic_a, field)
    page = client.post("/clinic/clinic-a/settings/", {**settings_form(clinic_a), field: value})
    assert page.status_code == 400
    clinic_a.refresh_from_db()
    assert getattr(clinic_a, field) == before
    with pytest.raises(ValidationError):
        clinic_services.clinic_settings_update(clinic=clinic_a, **{field: value})


def test_the_edges_of_the_settings_are_accepted_and_a_link_can_be_made(client, dana, clinic_a, session):
    sign_in(client, dana)
    edges = {
        "link_expiry_hours": Clinic.MAX_LINK_EXPIRY_HOURS,
        "reminder_delay_hours": Clinic.MAX_LINK_EXPIRY_HOURS,
        "retention_years": Clinic.MAX_RETENTION_YEARS,
        "idle_timeout_minutes": Clinic.MAX_IDLE_TIMEOUT_MINUTES,
    }
    assert client.post("/clinic/clinic-a/settings/", {**settings_form(clinic_a), **edges}).status_code == 302
    clinic_a.refresh_from_db()
    invitation, _ = invitation_create(session=session, created_by=dana)
    lifetime = invitation.expires_at - invitation.created_at
    assert abs(lifetime - timedelta(hours=Clinic.MAX_LINK_EXPIRY_HOURS)) < timedelta(seconds=5)
    assert client.get("/clinic/clinic-a/patients/").status_code == 200  # the retention cut-off


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("link_expiry_hours", 2_000_000_000),
        ("reminder_delay_hours", 2_000_000_000),
        ("retention_years", 2_000_000_000),
        ("idle_timeout_minutes", 2_000_000_000),
        ("idle_timeout_minutes", 0),
    ],
)
def test_the_database_refuses_settings_out_of_range(clinic_a, field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        Clinic.objects.filter(pk=clinic_a.pk).update(**{field: value})


# --- The API -------------------------------------------------------------------------------------


@pytest.fixture
def admin_api(clinic_a, dana) -> Api:
    return Api(make_token(dana, clinic_a))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("label", "L" * 200),
        ("external_id", "E" * 150),
        ("label", f"P{NUL}Q"),
        ("label", "P\x1bQ"),
        ("external_id", "E\u2028F"),
        ("contact_phone", "+49\x00"),
    ],
)
def test_the_api_refuses_text_that_does_not_fit(admin_api, alice, clinic_a, field, value):
    body = {"label": "K.L.", "therapist": membership_code(alice, clinic_a), field: value}
    response = admin_api.post("/api/v1/patients/", body)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_the_api_refuses_implausible_dates(admin_api, patient, episode, session, day):
    for url, body in [
        (f"/api/v1/patients/{patient.code}/sessions/", {"date": day}),
        (f"/api/v1/episodes/{episode.code}/close/", {"on": day}),
    ]:
        response = admin_api.post(url, body)
        assert response.status_code == 400, url
        assert "plausible date" in str(response.json()["error"]["fields"])
    response = admin_api("PATCH", f"/api/v1/sessions/{session.code}/", {"date": day})
    assert response.status_code == 400
    episode.ended_on = date(2026, 10, 1)
    episode.save()
    response = admin_api.post(f"/api/v1/patients/{patient.code}/episodes/", {"started_on": day})
    assert response.status_code == 400
    assert Episode.objects.count() == 1 and Session.objects.count() == 1


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/flags/", {"since": "0001-01-01T00:00:00"}),
        ("/api/v1/responses/", {"since": "0001-01-01T00:00:00"}),
        ("/api/v1/responses/", {"since": "9999-12-31T23:59:59"}),
        ("/api/v1/sessions/", {"date_from": "0001-01-01"}),
        ("/api/v1/patients/", {"q": "x" * 61}),
        ("/api/v1/patients/", {"q": f"a{NUL}"}),
        ("/api/v1/patients/", {"limit": "99999999999"}),
        ("/api/v1/patients/", {"offset": "99999999999"}),
        ("/api/v1/caseload/", {"q": f"a{NUL}"}),
    ],
)
def test_the_api_bounds_every_query_parameter(admin_api, patient, url, params):
    response = admin_api.get(url, params)
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == list(params)


def test_the_api_bounds_a_token_expiry(client, alice, clinic_a, settings):
    sign_in(client, alice)
    far = (date.today() + timedelta(days=settings.API_TOKEN_MAX_DAYS + 2)).isoformat() + "T00:00:00Z"
    for expires_at in ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+12:00", far]:
        response = client.post(
            "/api/v1/tokens/",
            {"name": "EHR", "clinic": str(clinic_a.code), "expires_at": expires_at},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=_csrf(client),
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid"
    assert not ApiToken.objects.exists()


def _csrf(client) -> str:
    client.get("/account/api-tokens/")
    return client.cookies["csrftoken"].value


def test_an_export_refuses_implausible_dates(client, dana, clinic_a):
    api = Api(make_token(dana, clinic_a))
    response = api.post(
        "/api/v1/exports/", {"report": "session_scores", "format": "csv", "start": "0001-01-01"}
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["start"]
