from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from clinics.models import Clinic, Membership


def test_a_new_clinic_and_its_first_admin_from_the_command_line(db):
    out = io.StringIO()
    call_command("clinic_create", slug="lindenhof", name="Lindenhof", admin="Head@Example.org", stdout=out)
    link = out.getvalue().strip().splitlines()[-1]
    assert link in mail.outbox[-1].body and "Bordin invites you" in mail.outbox[-1].body
    path = link.split("://", 1)[1].split("/", 1)[1]
    joined = Client().post(
        f"/{path}",
        {
            "name": "Hana Head",
            "password": "a-long-and-good-passphrase",
            "password_again": "a-long-and-good-passphrase",
        },
    )
    assert joined.status_code == 302
    client = Client()
    client.post("/accounts/login/", {"login": "head@example.org", "password": "a-long-and-good-passphrase"})
    assert client.post(f"/{path}", {"action": "accept"}).status_code == 302
    assert Membership.objects.get(clinic__slug="lindenhof").role == "admin"
    with pytest.raises(CommandError, match="exists already"):
        call_command("clinic_create", slug="lindenhof", name="Again", admin="x@example.org")
    assert Clinic.objects.filter(slug="lindenhof").get().name == "Lindenhof"
