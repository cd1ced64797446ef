"""Ending someone's sessions (deactivation, "Sign out everywhere", a password change) through
allauth's index of each user's sessions (allauth.usersessions), with any session engine."""

from __future__ import annotations

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth.models import User
from django.test import Client

from clinics.services import staff_invite, user_sessions_end
from tests.auth import sign_in
from tests.conftest import PASSWORD

ENGINES = ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"]


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


@pytest.mark.parametrize("engine", ENGINES)
def test_an_admin_signs_a_colleague_out_everywhere_with_either_session_engine(
    engine, settings, client, dana, alice
):
    settings.SESSION_ENGINE = engine
    phone, laptop = sign_in(Client(), alice), sign_in(Client(), alice)
    assert signed_in(phone) and signed_in(laptop)
    sign_in(client, dana)
    membership = alice.memberships.get()
    response = client.post(f"/clinic/clinic-a/staff/{membership.code}/sign-out/", follow=True)
    assert "signed out everywhere: 2 session(s) ended" in response.content.decode()
    # With cached_db a session also lives in the cache: ending it there too is what counts.
    assert not signed_in(phone) and not signed_in(laptop) and signed_in(client)
    assert not UserSession.objects.filter(user=alice).exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_password_change_ends_every_other_session_with_either_session_engine(engine, settings, alice):
    settings.SESSION_ENGINE = engine
    here, elsewhere = sign_in(Client(), alice), sign_in(Client(), alice)
    changed = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "a-new-long-passphrase", "password2": "a-new-long-passphrase"},
    )
    assert changed.status_code == 302
    assert signed_in(here) and not signed_in(elsewhere)


def test_sessions_already_ended_are_not_counted_and_leave_the_index(client, alice):
    sign_in(client, alice)
    assert UserSession.objects.filter(user=alice).count() == 1
    client.post("/accounts/logout/")
    assert user_sessions_end(user=alice) == 0
    assert not UserSession.objects.filter(user=alice).exists()


def test_only_that_users_sessions_end(alice, bob):
    hers, his = sign_in(Client(), alice), sign_in(Client(), bob)
    assert user_sessions_end(user=alice) == 1
    assert not signed_in(hers) and signed_in(his)


def test_a_sign_in_outside_allauths_views_is_indexed_too(clinic_a, dana):
    """Any ``login`` (the Django admin's, a test's ``force_login``), not only allauth's views."""
    _, token = staff_invite(
        clinic=clinic_a, email="nora@a.test", role="therapist", invited_by=dana, join_url=lambda t: t
    )
    client = Client()
    response = client.post(
        f"/join/{token}/",
        {"password": "a-long-and-good-passphrase", "password_again": "a-long-and-good-passphrase"},
    )
    assert response.status_code == 302  # the account is created; the join page signs nobody in
    assert not UserSession.objects.exists()
    client.force_login(
        User.objects.get(email="nora@a.test"), backend="django.contrib.auth.backends.ModelBackend"
    )
    row = UserSession.objects.get(user__email="nora@a.test")
    assert row.session_key == client.session.session_key
    assert user_sessions_end(user=row.user) == 1
    assert "_auth_user_id" not in client.session


def test_allauths_sessions_page_is_not_routed(client, alice):
    sign_in(client, alice)
    assert client.get("/accounts/sessions/").status_code == 404
