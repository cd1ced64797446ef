"""docs/api.md's curl recipe for a token, run as written (bash and curl) against a live server:
the password, the authenticator code, then POST /api/v1/tokens/. The recipe once stopped after
the password and got a 401; this runs the documented lines, so the docs cannot drift again."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.auth import totp_code, totp_enable
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def token_recipe() -> str:
    """The last shell block of the section "1. Create a token"."""
    section = DOCS.read_text().split("### 1. Create a token", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)[-1]


def test_the_documented_curl_recipe_creates_a_working_token(live_server, dana, tmp_path):
    secret = totp_enable(dana)
    env = {
        "PATH": "/usr/bin:/bin",
        "BASE": live_server.url,
        "EMAIL": "dana@a.test",
        "PASSWORD": PASSWORD,
        "CODE": totp_code(secret),
    }
    ran = subprocess.run(
        ["bash", "-e", "-c", token_recipe()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    created = json.loads(ran.stdout)
    assert created["token"].startswith("bdn_"), created
    me = requests.get(
        f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {created['token']}"}, timeout=30
    )
    assert me.status_code == 200 and me.json()["authenticated_by"] == "token"
    assert not (tmp_path / "jar").exists()  # the session cookie is not left behind
