"""The clinic admin's pages in a real browser: patients, staff, settings, report, exports."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import expect

from clinics.models import Clinic
from monitoring.models import ExportJob
from tests.browser.test_dashboards import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db):
    call_command("seed_demo", patients=16, today=date.today())


def test_an_admin_walks_through_the_admin_area(desktop, demo):
    sign_in(desktop, "admin@demo.bordin.test")
    page = desktop.page
    page.get_by_role("link", name="Clinic").click()
    assert page.locator("h1").inner_text() == "Patients"
    desktop.check("admin-patients")

    page.get_by_label("Label").fill("Q.R.")
    page.get_by_label("Therapist", exact=True).select_option(label="Alice Hartmann")
    page.get_by_label("Treatment", exact=True).select_option("cbt")
    page.get_by_role("button", name="Add patient").click()
    assert "Q.R. added" in page.locator(".messages").inner_text()
    desktop.check("admin-patient")

    page.get_by_role("link", name="Staff").click()
    page.get_by_label("Email").fill("new.therapist@demo.bordin.test")
    page.get_by_role("button", name="Send invitation").click()
    assert page.locator("#new-link").input_value().startswith(desktop.base_url + "/join/")
    desktop.check("admin-staff")

    page.get_by_role("link", name="Settings").click()
    desktop.check("admin-settings")

    page.get_by_role("link", name="Report").click()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    desktop.check("admin-report")

    page.get_by_role("link", name="Exports").click()
    page.get_by_label("Report", exact=True).select_option("session_scores")
    page.get_by_label("Format").select_option("xlsx")
    page.get_by_role("button", name="Export").click()
    page.get_by_role("link", name="Download").first.wait_for()
    desktop.check("admin-exports")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").first.click()
    assert download.value.suggested_filename.endswith(".xlsx")

    # An export under way, as with a background worker: queued, running, done. The list (htmx,
    # every 2 seconds while a job is under way) shows each step in place, then stops asking.
    job = ExportJob.objects.create(
        clinic=Clinic.objects.get(slug="demo"),
        requested_by=User.objects.get(email="admin@demo.bordin.test"),
        exporter="flags",
        format="csv",
    )
    desktop.goto("/clinic/demo/exports/")
    row = page.locator(f"#job-{job.code}")
    expect(row).to_contain_text("Queued 0%")
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    ExportJob.objects.filter(pk=job.pk).update(status="running", progress=40)
    expect(row).to_contain_text("Running 40%")
    desktop.check("admin-exports-running")
    ExportJob.objects.filter(pk=job.pk).update(status="done", progress=100)
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    expect(row).to_contain_text("Ready")
    expect(page.locator("#jobs")).not_to_have_attribute("hx-trigger", "every 2s")  # stopped asking
    assert loads == []  # no reload: the list changed in place
    desktop.check("admin-exports-done")
