"""The settings page names questionnaires, not their codes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.html import escape

from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def test_the_questionnaire_is_chosen_by_name(client: Client, dana, instrument):
    sign_in(client, dana)
    page = client.get("/clinic/clinic-a/settings/").content.decode()
    name = escape(instrument.translation("en").name)
    assert f'<option value="bordin-alliance" selected>{name} (alliance form, version 1)</option>' in page
    assert ">bordin-alliance</option>" not in page
    assert "Alliance counts as low below" in page
