"""K.J. of the demo clinic in a real browser: one card for the rupture at session 8 and all that
followed it, the low alliance a card of its own, every flag drawn on the charts, and one
acknowledgement for the whole story (axe, screenshots)."""

from __future__ import annotations

import pytest

from clinics.models import Patient
from monitoring.models import Flag
from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 (demo is a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_kj_has_one_card_for_the_rupture_and_what_followed_it(desktop, demo):  # noqa: F811
    kj = Patient.objects.get(label="K.J.")
    flags = Flag.objects.filter(episode__patient=kj)
    story = flags.filter(session__number__gte=8, session__number__lte=11).exclude(kind="low_alliance")
    assert set(story.values_list("kind", flat=True)) == {"rupture", "sudden_loss", "decline", "unrepaired"}

    sign_in(desktop, "alice@demo.bordin.test")
    page = desktop.page
    row = page.locator('tr[data-patient="K.J."]')
    badges = row.locator(".pill").all_inner_texts()
    assert sum("Unrepaired rupture" in b for b in badges) == 1 and not any(
        b.startswith("Rupture") for b in badges
    )

    desktop.goto(f"/patients/{kj.code}/")
    page.locator(".js-plotly-plot").nth(2).wait_for()
    cards = page.locator("li.flag")
    titles = cards.locator(".flag-head .pill").all_inner_texts()
    assert titles[:2] == ["Unrepaired rupture", "Alliance has stayed low"], titles
    card = cards.first
    text = card.inner_text()
    assert "Sessions 8 to 11" in text
    assert (
        "Dropped at session 8;" in text and "not back by session 11" in text and "a decline followed" in text
    )
    assert card.locator("ol.story-steps > li").count() == 4
    card.locator("ol.story-steps > li").nth(2).locator("summary").click()
    assert "did not come back to" in card.locator("ol.story-steps > li").nth(2).inner_text()

    traces = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map("
        "d => [d.dataset.chart, (d.data || []).map(t => [t.name, t.xaxis || 'x'])]))"
    )
    assert ["Alliance stayed low", "x"] in traces["chart-trajectory"]
    panels = {axis for name, axis in traces["chart-subscales"] if name == "Rupture"}
    assert panels == {"x", "x2", "x3", "x4"}, "the rupture on every subscale panel"
    assert any(name == "Not repaired" for name, _ in traces["chart-subscales"])
    card.scroll_into_view_if_needed()
    desktop.check("patient-one-card-per-event")

    card.get_by_label("Discussed with patient").check()
    card.get_by_label("Note (optional)").fill("Went over the session 8 rupture together")
    card.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages")
    assert not story.filter(acknowledgement="").exists(), "every flag of the story"
    assert flags.filter(kind="low_alliance", acknowledgement="").exists(), "its own card, still open"
    assert "Went over the session 8 rupture" in page.locator("li.flag.acknowledged").first.inner_text()
    desktop.check("patient-story-acknowledged")
