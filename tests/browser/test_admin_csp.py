"""Issue 14, finding 8: ``/django-admin/`` under the site's Content Security Policy, in chromium,
where any violation is a console error (the test client's walk of every admin page is in
tests/attacks/test_admin_csp.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.auth import sign_in


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root@bordin.test", "root@bordin.test", "a-long-root-passphrase")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_works_in_chromium_under_its_policy(desktop, superuser):
    client = sign_in(Client(), superuser)
    desktop.page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": desktop.base_url}]
    )
    for path in (
        reverse("admin:index"),
        reverse("admin:auth_user_changelist") + "?q=root",
        reverse("admin:auth_user_add"),
        reverse("admin:auth_group_add"),  # the filter_horizontal selector (SelectFilter2.js)
    ):
        response = desktop.goto(path)
        assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
        desktop.page.locator("#content").wait_for()
    # The change form's date and time shortcuts (DateTimeShortcuts.js, calendar.js) and the
    # collapsible navigation filter (nav_sidebar.js) run: each is a script from /static/.
    desktop.goto(reverse("admin:auth_user_change", args=[superuser.pk]))
    desktop.page.get_by_role("link", name="Today").first.click()
    assert desktop.page.locator("#id_date_joined_0").input_value()
    desktop.page.locator("#nav-filter").fill("user")
    desktop.page.get_by_role("button", name="Save").first.click()
    desktop.page.locator(".messagelist").wait_for()
    assert not desktop.console_errors, desktop.console_errors
