"""The export page's list of recent exports: a fragment of the page's template that htmx asks for
every 2 seconds while an export is queued or running, for the clinic's admins only."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from monitoring.models import ExportJob
from monitoring.security.middleware import LAST_SEEN
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

LIST = "/clinic/clinic-a/exports/recent/"


@pytest.fixture
def running(clinic_a, dana) -> ExportJob:
    return ExportJob.objects.create(
        clinic=clinic_a, requested_by=dana, exporter="flags", format="csv", status="running", progress=40
    )


def poll_url(html: str) -> str | None:
    """Where the list asks for itself, if it does."""
    found = re.search(r'<div id="jobs" hx-get="([^"]+)" hx-trigger="every 2s" hx-swap="outerHTML">', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_list_alone_is_served_to_the_clinics_admins(client, dana, running):
    sign_in(client, dana)
    response = client.get(LIST, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="jobs"') and "<html" not in html and "New export" not in html
    assert f'id="job-{running.code}"' in html and "Running 40%" in html and "Dana A" in html


@pytest.mark.parametrize("who", ["alice", "erin"])
def test_the_list_is_404_for_a_therapist_and_another_clinics_admin(client, running, request, who):
    sign_in(client, request.getfixturevalue(who))
    assert client.get(LIST, headers={"HX-Request": "true"}).status_code == 404
    assert client.get(LIST).status_code == 404


def test_the_page_and_the_list_share_one_template_and_poll_only_while_an_export_is_under_way(
    client, dana, running
):
    sign_in(client, dana)
    page = client.get("/clinic/clinic-a/exports/").content.decode()
    url = poll_url(page)
    assert url and url.startswith(LIST + "?seen=")
    assert page.count(f'id="job-{running.code}"') == 1 and 'aria-live="polite"' in page
    ExportJob.objects.filter(pk=running.pk).update(status="done", progress=100)
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Ready" in fragment and "Download" in fragment
    assert poll_url(fragment) is None and "hx-get" not in fragment  # nothing under way: it stops


def test_an_unchanged_list_is_not_sent_again(client, dana, running):
    """204: htmx keeps the list (a live region) as it is instead of replacing it, so a screen
    reader does not read it out every 2 seconds."""
    sign_in(client, dana)
    url = poll_url(client.get(LIST).content.decode())
    assert url is not None
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 204
    ExportJob.objects.filter(pk=running.pk).update(progress=60)
    changed = client.get(url, headers={"HX-Request": "true"})
    assert changed.status_code == 200 and "Running 60%" in changed.content.decode()


def test_htmx_comes_from_our_static_files_configured_for_the_csp(client, dana, running):
    sign_in(client, dana)
    page = client.get("/clinic/clinic-a/exports/").content.decode()
    assert '<script src="/static/django_htmx/htmx-2.min.js" defer></script>' in page
    assert finders.find("django_htmx/htmx-2.min.js")  # from the django-htmx wheel, no CDN
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert config and '"allowEval": false' in config.group(1)
    assert '"includeIndicatorStyles": false' in config.group(1)
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script


def test_an_htmx_request_after_the_session_ended_reloads_the_whole_page(client, dana, running):
    """Not the sign-in page put into the list: a reload, and the page then asks to sign in."""
    refused = Client().get(LIST, headers={"HX-Request": "true"})
    assert refused.status_code == 200 and refused["HX-Refresh"] == "true" and refused.content == b""
    assert Client().get(LIST)["Location"].startswith("/accounts/login/")  # without htmx: as ever
    sign_in(client, dana)
    session = client.session
    session[LAST_SEEN] = 0  # long idle
    session.save()
    idle = client.get(LIST, headers={"HX-Request": "true"})
    assert idle.status_code == 200 and idle["HX-Refresh"] == "true"
    after = client.get("/clinic/clinic-a/exports/", follow=True)
    assert "signed out after a period of inactivity" in after.content.decode()
