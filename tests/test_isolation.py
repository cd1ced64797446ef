"""Tenant isolation, proved route by route: every page of the URL conf, for every role, on the
role's own objects, a colleague's in the same clinic, and another clinic's.

Roles: the therapist (alice), her colleague (bob), the clinic's admin (dana), another clinic's
admin (erin), alice's supervisor (sam: alice is assigned to him, bob is not), someone holding a
patient link, and an anonymous visitor. Objects: OWN are alice's (her patient, its episode,
sessions, flag, form link; clinic A), SAME are bob's (clinic A), OTHER are charlie's (clinic B).
What each role must get is a rule per route, one letter per object: A (allowed: the route's own
answer, written next to it as an exact status, and for a redirect its exact target), H (exactly
404: hidden, its existence not revealed), F (exactly 403: seen, but refused: a supervisor is
read-only), L (exactly a 302 to the sign-in page with ?next= the requested path). Every cell compares the status code and the
Location header, so an answer nobody planned (a 400, a 410, a redirect to two-factor set-up
because the test's sign-in was not complete) fails the cell.

The API's operations have the same table in tests/api/test_permissions.py, checked there against
the OpenAPI schema; allauth's account pages are checked below by name, generated from the URL conf.
``test_no_route_is_missing`` compares this table with the URL conf, so a new page cannot be added
without deciding who may reach it. ``test_every_state_changing_route_refuses_a_request_without_a_csrf_token``
posts to every route that takes POST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import unescape as html_text
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from clinics.models import Clinic, Episode, Membership, Patient, Session, StaffInvitation
from clinics.services import staff_invite
from monitoring.collection import links
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_create
from monitoring.models import ExportJob, Flag, Instrument, Invitation, SafetyAlert
from monitoring.urls import ACCOUNT_PAGES_ANONYMOUS
from tests.auth import sign_in
from tests.conftest import finished_export

pytestmark = pytest.mark.django_db

ROLES = ("therapist", "colleague", "admin", "other admin", "supervisor", "patient link", "anonymous")
SCOPES = ("own", "same", "other")
ALL_FIVES = {n: 5 for n in range(1, 13)}


@dataclass
class Objects:
    """One therapist's things, enough to name every route's object."""

    clinic: Clinic
    patient: Patient
    session: Session  # held and answered, with a flag
    held: Session  # held, not answered
    flag: Flag
    membership: Membership
    staff_invitation: StaffInvitation
    job: ExportJob
    form_token: str
    join_token: str
    alert: SafetyAlert


def objects_of(therapist: Any, clinic: Clinic, admin: Any, instrument: Any, tag: str) -> Objects:
    patient = Patient.objects.create(clinic=clinic, label=f"P.{tag}", therapist=therapist)
    episode = Episode.objects.create(patient=patient, therapist=therapist, started_on=date(2026, 9, 1))
    session = Session.objects.create(episode=episode, number=1, date=date(2026, 9, 1), status="held")
    held = Session.objects.create(episode=episode, number=2, date=date(2026, 9, 8), status="held")
    response_create(session=session, instrument=instrument, answers=ALL_FIVES, source="staff")
    flag = Flag.objects.create(
        episode=episode, session=session, scale="total", kind="rupture", magnitude=1, explanation="."
    )
    staff_invitation, join_url = staff_invite(
        clinic=clinic, email=f"new-{tag}@x.test", role="therapist", invited_by=admin, join_url=lambda t: t
    )
    job = finished_export(clinic, admin, settings.MEDIA_ROOT)
    _, form_token = invitation_create(session=held, created_by=therapist)
    phq9 = Instrument.objects.get(code="phq9")
    risky = response_create(
        session=session, instrument=phq9, answers={**dict.fromkeys(range(1, 9), 0), 9: 2}, source="staff"
    )
    return Objects(
        clinic=clinic,
        patient=patient,
        session=session,
        held=held,
        flag=flag,
        membership=Membership.objects.get(user=therapist, clinic=clinic),
        staff_invitation=staff_invitation,
        job=job,
        form_token=form_token,
        join_token=join_url,
        alert=SafetyAlert.objects.get(response=risky),
    )


@pytest.fixture
def scopes(
    clinic_a, clinic_b, alice, bob, dana, charlie, erin, sam, instrument, settings, tmp_path
) -> dict[str, Objects]:
    settings.MEDIA_ROOT = tmp_path
    return {
        "own": objects_of(alice, clinic_a, dana, instrument, "own"),
        "same": objects_of(bob, clinic_a, dana, instrument, "same"),
        "other": objects_of(charlie, clinic_b, erin, instrument, "other"),
    }


def rule(**by_role: str) -> dict[str, str]:
    """Expected outcome per role, as three letters for own / same / other."""
    return {role: by_role[role.replace(" ", "_")] for role in ROLES}


SIGNED_OUT = {"patient_link": "LLL", "anonymous": "LLL"}
# A patient's data: their therapist and the clinic's admins; their therapist's supervisor reads.
CARE = rule(therapist="AHH", colleague="HAH", admin="AAH", other_admin="HHA", supervisor="AHH", **SIGNED_OUT)
# Acting on a patient (a write, a form link, answers, an export): the supervisor is refused (403).
CARE_WRITE = {**CARE, "supervisor": "FHH"}
# The clinic's administration: its active admins only.
ADMIN = rule(therapist="HHH", colleague="HHH", admin="AAH", other_admin="HHA", supervisor="HHH", **SIGNED_OUT)
# The team page: the clinic's admins and supervisors.
TEAM = rule(therapist="HHH", colleague="HHH", admin="AAH", other_admin="HHA", supervisor="AAH", **SIGNED_OUT)
# A staff member's own pages (no other person's object in the URL).
STAFF = rule(therapist="AAA", colleague="AAA", admin="AAA", other_admin="AAA", supervisor="AAA", **SIGNED_OUT)
# Reached with a one-time link (the link is the credential) or open to all.
OPEN = rule(
    therapist="AAA",
    colleague="AAA",
    admin="AAA",
    other_admin="AAA",
    supervisor="AAA",
    patient_link="AAA",
    anonymous="AAA",
)

Url = Callable[[Objects], str]


@dataclass(frozen=True)
class Answer:
    """What an allowed request gets: the exact status and, for a redirect, the exact target.

    ``to`` is read after the request, so it can name what the request made (a new session, a
    new tablet link)."""

    status: int
    to: Url | None = None


OK = Answer(200)


def redirect(to: Url, status: int = 302) -> Answer:
    return Answer(status, to)


def newest_session(o: Objects) -> str:
    return f"/sessions/{Session.objects.filter(episode__patient=o.patient).latest('number').code}/"


def tablet_form(o: Objects) -> str:
    tablet = Invitation.objects.filter(session=o.held, channel=Invitation.Channel.TABLET).latest("pk")
    return f"/f/{links.token_for_salt(tablet.salt)}/"


# route name -> (method, url from the scope's objects, POST body, the allowed answer, rule)
PAGES: dict[str, tuple[str, Url, dict[str, Any], Answer, dict[str, str]]] = {
    "monitoring:caseload": ("GET", lambda o: "/", {}, OK, STAFF),
    "monitoring:notifications-read": (
        "POST",
        lambda o: "/notifications/read/",
        {},
        redirect(lambda o: "/"),
        STAFF,
    ),
    "monitoring:kiosk": ("GET", lambda o: "/kiosk/", {}, OK, STAFF),
    "monitoring:api-tokens": ("GET", lambda o: "/account/api-tokens/", {}, OK, STAFF),
    "monitoring:notification-settings": ("GET", lambda o: "/account/notifications/", {}, OK, STAFF),
    "monitoring:patient": ("GET", lambda o: f"/patients/{o.patient.code}/", {}, OK, CARE),
    "monitoring:patient-review": ("GET", lambda o: f"/patients/{o.patient.code}/review/", {}, OK, CARE),
    "monitoring:session-add": (
        "POST",
        lambda o: f"/patients/{o.patient.code}/sessions/",
        {"date": "2026-10-01"},
        redirect(newest_session),
        CARE_WRITE,
    ),
    "monitoring:form-send": (
        "POST",
        lambda o: f"/patients/{o.patient.code}/send-form/",
        {},
        redirect(newest_session),
        CARE_WRITE,
    ),
    "monitoring:patient-appointments": (
        "POST",
        lambda o: f"/patients/{o.patient.code}/appointments/",
        {"channel": "none", "repeat": ""},
        redirect(lambda o: f"/patients/{o.patient.code}/#appointments"),
        CARE_WRITE,
    ),
    "monitoring:session": ("GET", lambda o: f"/sessions/{o.session.code}/", {}, OK, CARE),
    # The paper form: a write, though its page is a GET.
    "monitoring:response-enter": (
        "GET",
        lambda o: f"/sessions/{o.held.code}/enter/patient/",
        {},
        OK,
        CARE_WRITE,
    ),
    "monitoring:session-action": (
        "POST",
        lambda o: f"/sessions/{o.held.code}/link/",
        {},
        redirect(lambda o: f"/sessions/{o.held.code}/"),
        CARE_WRITE,
    ),
    "monitoring:flag-acknowledge": (
        "POST",
        lambda o: f"/flags/{o.flag.code}/acknowledge/",
        {"acknowledgement": "discussed", "note": ""},
        redirect(lambda o: f"/patients/{o.patient.code}/#flag-{o.flag.code}"),
        CARE_WRITE,
    ),
    "monitoring:flag-unacknowledge": (
        "POST",
        lambda o: f"/flags/{o.flag.code}/unacknowledge/",
        {},
        redirect(lambda o: f"/patients/{o.patient.code}/#flag-{o.flag.code}"),
        CARE_WRITE,
    ),
    "monitoring:safety-follow-up": (
        "POST",
        lambda o: f"/safety/{o.alert.code}/follow-up/",
        {"follow_up": "contacted", "note": "Called."},
        redirect(lambda o: f"/patients/{o.patient.code}/#safety"),
        CARE_WRITE,
    ),
    # The tablet gets a fresh link and the staff member is signed out.
    "monitoring:kiosk-start": (
        "POST",
        lambda o: f"/kiosk/{o.held.code}/",
        {},
        redirect(tablet_form),
        CARE_WRITE,
    ),
    # An export: a supervisor exports nothing.
    "monitoring:patient-report-pdf": (
        "GET",
        lambda o: f"/patients/{o.patient.code}/report.pdf",
        {},
        OK,
        CARE_WRITE,
    ),
    "monitoring:admin": (
        "GET",
        lambda o: f"/clinic/{o.clinic.slug}/",
        {},
        redirect(lambda o: f"/clinic/{o.clinic.slug}/patients/"),
        ADMIN,
    ),
    "monitoring:admin-staff": ("GET", lambda o: f"/clinic/{o.clinic.slug}/staff/", {}, OK, ADMIN),
    "monitoring:admin-staff-action": (
        "POST",
        lambda o: f"/clinic/{o.clinic.slug}/staff/{o.membership.code}/sign-out/",
        {},
        redirect(lambda o: f"/clinic/{o.clinic.slug}/staff/"),
        ADMIN,
    ),
    "monitoring:admin-invitation-revoke": (
        "POST",
        lambda o: f"/clinic/{o.clinic.slug}/invitations/{o.staff_invitation.code}/revoke/",
        {},
        redirect(lambda o: f"/clinic/{o.clinic.slug}/staff/"),
        ADMIN,
    ),
    "monitoring:admin-patients": ("GET", lambda o: f"/clinic/{o.clinic.slug}/patients/", {}, OK, ADMIN),
    "monitoring:admin-patient": (
        "GET",
        lambda o: f"/clinic/{o.clinic.slug}/patients/{o.patient.code}/",
        {},
        OK,
        ADMIN,
    ),
    # The wrong confirmation: back to the patient's page, nothing erased.
    "monitoring:admin-patient-erase": (
        "POST",
        lambda o: f"/clinic/{o.clinic.slug}/patients/{o.patient.code}/erase/",
        {"confirm": "not the label"},
        redirect(lambda o: f"/clinic/{o.clinic.slug}/patients/{o.patient.code}/"),
        ADMIN,
    ),
    "monitoring:admin-settings": ("GET", lambda o: f"/clinic/{o.clinic.slug}/settings/", {}, OK, ADMIN),
    "monitoring:admin-audit": ("GET", lambda o: f"/clinic/{o.clinic.slug}/audit/", {}, OK, ADMIN),
    "monitoring:admin-audit-export": ("GET", lambda o: f"/clinic/{o.clinic.slug}/audit.csv", {}, OK, ADMIN),
    "monitoring:admin-report": ("GET", lambda o: f"/clinic/{o.clinic.slug}/report/", {}, OK, ADMIN),
    "monitoring:admin-exports": ("GET", lambda o: f"/clinic/{o.clinic.slug}/exports/", {}, OK, ADMIN),
    "monitoring:admin-exports-recent": (
        "GET",
        lambda o: f"/clinic/{o.clinic.slug}/exports/recent/",
        {},
        OK,
        ADMIN,
    ),
    "monitoring:export-download": ("GET", lambda o: f"/exports/{o.job.code}/download/", {}, OK, ADMIN),
    "monitoring:team": ("GET", lambda o: f"/team/{o.clinic.slug}/", {}, OK, TEAM),
    "monitoring:join": ("GET", lambda o: f"/join/{o.join_token}/", {}, OK, OPEN),
    "monitoring:form": ("GET", lambda o: f"/f/{o.form_token}/", {}, OK, OPEN),
    # Not answered yet: back to the form.
    "monitoring:form-done": (
        "GET",
        lambda o: f"/f/{o.form_token}/done/",
        {},
        redirect(lambda o: f"/f/{o.form_token}/"),
        OPEN,
    ),
    "healthz": ("GET", lambda o: "/healthz", {}, OK, OPEN),
    "favicon": ("GET", lambda o: "/favicon.ico", {}, redirect(lambda o: "/static/favicon.svg", 301), OPEN),
}
# Routes whose POST forms are also tested for CSRF (the GET above is their page).
POST_FORMS = {
    "monitoring:api-tokens": lambda o: "/account/api-tokens/",
    "monitoring:notification-settings": lambda o: "/account/notifications/",
    "monitoring:response-enter": lambda o: f"/sessions/{o.held.code}/enter/patient/",
    "monitoring:admin-staff": lambda o: f"/clinic/{o.clinic.slug}/staff/",
    "monitoring:admin-patients": lambda o: f"/clinic/{o.clinic.slug}/patients/",
    "monitoring:admin-patient": lambda o: f"/clinic/{o.clinic.slug}/patients/{o.patient.code}/",
    "monitoring:admin-settings": lambda o: f"/clinic/{o.clinic.slug}/settings/",
    "monitoring:admin-exports": lambda o: f"/clinic/{o.clinic.slug}/exports/",
    "monitoring:join": lambda o: f"/join/{o.join_token}/",
}
#: CSRF-exempt on purpose, with the reason (docs/security.md): the patient form is posted with
#: ``Origin: null`` (no-referrer) and protected by its one-time token.
CSRF_EXEMPT = {"monitoring:form"}
#: Open to a signed-out visitor, but with nothing to do for one who is not signing in: allauth
#: sends them to the sign-in page (no ?next=). The rest of ACCOUNT_PAGES_ANONYMOUS answer 200.
ACCOUNT_PAGES_BACK_TO_SIGN_IN = {"account_confirm_login_code", "account_logout", "mfa_authenticate"}


def named_routes() -> dict[str, tuple[str, Any]]:
    """Every named route of the URL conf, by 'namespace:name': its pattern and its view."""
    found: dict[str, tuple[str, Any]] = {}

    def walk(patterns: Any, namespace: str, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
                walk(p.url_patterns, ns or "", prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                name = p.name or ("favicon" if str(p.pattern) == "favicon.ico" else None)
                if name is None and namespace == "admin":
                    continue  # Django admin redirects; the whole site is checked by its prefix
                assert name, f"unnamed route {prefix}{p.pattern}: name it and add it to the matrix"
                found[f"{namespace}:{name}" if namespace else name] = (prefix + str(p.pattern), p.callback)

    walk(get_resolver().url_patterns, "", "/")
    return found


def sign_in_page(path: str) -> str:
    """Where a signed-out visitor is sent: the sign-in page, then back to ``path``."""
    return f"{reverse('account_login')}?next={path}"


def answered(response: Any) -> str:
    """A response as its status and, where it has one, its redirect target: '302 /kiosk/'."""
    if response.has_header("Location"):
        return f"{response.status_code} {response['Location']}"
    return str(response.status_code)


def expected_answer(letter: str, allowed: Answer, path: str, o: Objects) -> str:
    if letter == "H":
        return "404"
    if letter == "F":
        return "403"
    if letter == "L":
        return f"302 {sign_in_page(path)}"
    assert letter == "A", f"unknown rule letter {letter}"
    return f"{allowed.status} {allowed.to(o)}" if allowed.to else str(allowed.status)


def client_for(role: str, users: dict[str, Any], scope: Objects) -> Client:
    if role == "anonymous":
        return Client()
    if role == "patient link":
        holder = Client()
        holder.get(f"/f/{scope.form_token}/")  # has opened a form link, no more
        return holder
    return sign_in(Client(), users[role])


def test_no_route_is_missing():
    routes = named_routes()
    pages = {name for name in routes if not name.startswith(("api:", "admin:"))}
    accounts = {name for name in pages if name.startswith(("account_", "mfa_"))}
    assert pages - accounts == set(PAGES), "routes without a rule in the matrix, or rules for no route"
    assert {n for n in routes if n.startswith("api:")}, "the API's routes are checked in tests/api"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_matrix(name, role, scopes, alice, bob, dana, erin, sam):
    method, url, body, allowed, by_role = PAGES[name]
    users = {"therapist": alice, "colleague": bob, "admin": dana, "other admin": erin, "supervisor": sam}
    got, expected = [], []
    for letter, scope in zip(by_role[role], SCOPES, strict=True):
        objects = scopes[scope]
        client = client_for(role, users, objects)
        path = url(objects)
        response = client.post(path, body) if method == "POST" else client.get(path)
        got.append(answered(response))
        expected.append(expected_answer(letter, allowed, path, objects))
    assert got == expected, (
        f"{method} {name} as {role} (rule {by_role[role]}), own/same/other:\n"
        f"     got {got}\nexpected {expected}"
    )


def test_every_write_on_a_patient_is_refused_to_the_supervisor():
    """A POST that the patient's therapist may make is a write: a supervisor, who sees the
    patient, must get 403 there (CARE_WRITE, and ``require_may_change`` in the view), never 200."""
    writes = {
        name
        for name, (method, *_, by_role) in PAGES.items()
        if method == "POST" and by_role["therapist"] == "AHH"
    }
    assert writes, "the care routes' POSTs"
    assert {name for name in writes if PAGES[name][4]["supervisor"] != "FHH"} == set(), (
        "a supervisor may act on a patient here: use CARE_WRITE and clinics.permissions.require_may_change"
    )


def test_a_supervisor_sees_the_patient_page_read_only(scopes, sam):
    """The page hides what the views refuse: no acknowledgement, sending, adding or PDF."""
    client = sign_in(Client(), sam)
    patient = scopes["own"].patient
    html = client.get(f"/patients/{patient.code}/").content.decode()
    assert "read-only" in html
    for action in (
        "/acknowledge/",
        "/send-form/",
        f"/patients/{patient.code}/sessions/",
        "report.pdf",
        "/follow-up/",
    ):
        assert action not in html, action
    session = client.get(f"/sessions/{scopes['own'].held.code}/").content.decode()
    assert "/f/" not in session and "form-link" not in session and "/enter/" not in session
    refused = client.post(f"/flags/{scopes['own'].flag.code}/acknowledge/", {"acknowledgement": "discussed"})
    assert refused.status_code == 403
    assert "read-only: only the patient's therapist and the clinic's admins can acknowledge flags" in (
        html_text(refused.content.decode())
    )
    assert Flag.objects.get(pk=scopes["own"].flag.pk).acknowledgement == ""


def test_account_pages_are_open_only_where_signing_in_needs_them(client):
    """allauth's pages, generated from the URL conf: the allow-list answers, the rest asks to sign in."""
    open_views = {
        name
        for name, (_, view) in named_routes().items()
        if name.startswith(("account_", "mfa_")) and getattr(view, "login_required", True) is False
    }
    assert open_views == ACCOUNT_PAGES_ANONYMOUS
    for name, (pattern, _) in named_routes().items():
        if not name.startswith(("account_", "mfa_")):
            continue
        kwargs = {"uidb36": "0", "key": "x-y"} if "<uidb36>" in pattern else {}
        kwargs = {"key": "x"} if "<key>" in pattern and not kwargs else kwargs
        path = reverse(name, kwargs=kwargs)
        if name not in ACCOUNT_PAGES_ANONYMOUS:
            expected = f"302 {sign_in_page(path)}"
        elif name in ACCOUNT_PAGES_BACK_TO_SIGN_IN:
            expected = f"302 {reverse('account_login')}"
        else:
            expected = "200"
        assert answered(client.get(path)) == expected, name


def test_the_django_admin_asks_to_sign_in(client):
    assert answered(client.get("/django-admin/")) == "302 /django-admin/login/?next=/django-admin/"


def test_lists_and_exports_never_contain_another_clinics_rows(client, scopes, dana):
    sign_in(client, dana)
    other = scopes["other"]
    for path in ("/", "/clinic/clinic-a/patients/", "/clinic/clinic-a/staff/", "/clinic/clinic-a/audit/"):
        html = client.get(path).content.decode()
        assert other.patient.label not in html and str(other.patient.code) not in html, path
        assert "charlie@b.test" not in html and "erin@b.test" not in html, path
    csv = b"".join(client.get("/clinic/clinic-a/audit.csv").streaming_content).decode()
    assert str(other.patient.code) not in csv and "erin@b.test" not in csv
    from monitoring.exports import EXPORTS, ExportFilters, render

    clinic, filters = scopes["own"].clinic, ExportFilters()
    assert len(EXPORTS) > 1
    for key, exporter in EXPORTS.items():
        if key == "patient_report":
            continue  # one patient's, chosen through the care rule (monitoring:patient-report-pdf)
        rendered = render(
            exporter, exporter.frame(clinic=clinic, filters=filters), "csv", clinic=clinic, filters=filters
        )
        content = rendered.content if isinstance(rendered.content, bytes) else b"".join(rendered.content)
        text = content.decode()
        assert "P.own" in text or key == "clinic_summary", key  # the export is not empty
        assert other.patient.label not in text and str(other.patient.code) not in text, key


@pytest.mark.parametrize("name", sorted(n for n, v in PAGES.items() if v[0] == "POST") + sorted(POST_FORMS))
def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(name, scopes, dana, alice):
    url = PAGES[name][1] if PAGES[name][0] == "POST" else POST_FORMS[name]
    user = dana if "admin" in name or name == "monitoring:join" else alice
    client = sign_in(Client(enforce_csrf_checks=True), user)
    response = client.post(url(scopes["own"]), PAGES[name][2])
    assert response.status_code == 403, f"{name} accepted a POST without a CSRF token"


def test_only_the_patient_form_is_csrf_exempt():
    """DRF's views are exempt from Django's check and do their own: a token request carries no
    cookie, a session request is checked by DRF (next test)."""
    exempt = {
        name
        for name, (_, view) in named_routes().items()
        if getattr(view, "csrf_exempt", False) and not name.startswith("api:")
    }
    assert exempt == CSRF_EXEMPT


def test_the_api_refuses_a_session_post_without_a_csrf_token(scopes, alice):
    client = sign_in(Client(enforce_csrf_checks=True), alice)
    response = client.post(
        f"/api/v1/flags/{scopes['own'].flag.code}/acknowledge/",
        {"acknowledgement": "discussed"},
        content_type="application/json",
    )
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]


def test_login_is_required_everywhere_but_the_allow_list():
    """LoginRequiredMiddleware: only these views answer a signed-out visitor (the API answers
    401 itself, tests/api)."""
    open_views = {
        name
        for name, (_, view) in named_routes().items()
        if getattr(view, "login_required", True) is False and not name.startswith(("api:", "admin:"))
    }
    assert open_views == ACCOUNT_PAGES_ANONYMOUS | {
        "monitoring:form",
        "monitoring:form-done",
        "monitoring:join",
        "healthz",
        "favicon",
    }
    api_views = [view for name, (_, view) in named_routes().items() if name.startswith("api:")]
    assert len(api_views) > 10
    assert all(getattr(view, "login_required", True) is False for view in api_views)
