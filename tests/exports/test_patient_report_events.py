"""The one-patient PDF groups flags as the patient page does: one entry per event (a rupture and
what followed it is one story), with its acknowledgement state, in words, read back with pdftotext."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from monitoring.flags.services import flag_acknowledge
from monitoring.models import Flag
from tests.exports.test_exports import FORMULA_NOTE, filters_for, produce
from tests.exports.test_exports import cast as cast  # the fixture

pytestmark = pytest.mark.django_db

SCALES = ("total", "goal", "task", "bond", "agreement")


def pdf_text(data: bytes) -> str:
    """The PDF's text as pdftotext reads it (poppler-utils, installed by .ci/system-deps), with
    its line breaks and runs of spaces as single spaces."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is not installed (apt-get install poppler-utils; .ci/system-deps does it).")
    out = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout
    return " ".join(out.decode().split())


def kj_story(episode) -> list[Flag]:
    """Around the cast's acknowledged total rupture at session 4: the rupture on the other scales,
    the decline it set off (5), the sudden loss into session 4 (confirmed at 6), unrepaired at 7,
    and an alliance below the cut-off from session 4 to 6 (its own event)."""
    sessions = {s.number: s for s in episode.sessions.all()}
    rows: list[tuple[int, str, str, dict[str, object]]] = [
        (4, "rupture", s, {"rule": "baseline_k_sd"}) for s in SCALES if s != "total"
    ]
    rows += [(5, "decline", s, {"rule": "lower_cusum", "rupture_session": 4}) for s in SCALES]
    rows += [
        (6, "sudden_loss", s, {"rule": "tang_derubeis", "from_session": 3, "to_session": 4}) for s in SCALES
    ]
    rows += [(7, "unrepaired", s, {"rule": "window_ended", "rupture_session": 4}) for s in SCALES]
    rows += [(6, "low_alliance", "total", {"rule": "below_cutoff", "from_session": 4, "to_session": 6})]
    return [
        Flag.objects.create(
            episode=episode,
            session=sessions[number],
            scale=scale,
            kind=kind,
            alarm=scale == "total",
            magnitude=1.0,
            explanation=f"The {kind.replace('_', ' ')} on {scale} at session {number}.",
            detail=detail,
        )
        for number, kind, scale, detail in rows
    ]


def test_the_pdf_has_one_entry_per_story_with_its_steps_and_acknowledgement(cast, clinic_a, alice):
    flags = kj_story(cast["ep_formula"])
    text = pdf_text(produce(clinic_a, "patient_report", "pdf", filters_for("patient_report", cast)))
    flagged = text.split("Flags One entry per event")[1].split("Sessions Session")[0]
    # Two entries, not twenty-two: the story and the low alliance.
    assert flagged.count("Unrepaired rupture · sessions 4 to 7") == 1
    assert flagged.count("Alliance has stayed low · session 6") == 1
    assert "Total alliance, Goal and task agreement, Task agreement, Goal agreement, Bond" in flagged
    assert (
        "Dropped at session 4; a sudden loss from session 3 to 4 (confirmed at session 6); "
        "not back by session 7; a decline followed (flagged at session 5)." in flagged
    )
    assert "The unrepaired on total at session 7." in flagged
    # Labels, not codes.
    for code in ("sudden_loss", "low_alliance", "not_relevant", "discussed"):
        assert code not in flagged
    # Only the total's rupture was acknowledged: the story is open since.
    assert "Discussed with patient by Alice A on" in flagged and FORMULA_NOTE in flagged
    assert "not yet acknowledged since: dropped at session 4" in flagged
    assert flagged.count("Not yet acknowledged.") == 1  # the low alliance

    flag_acknowledge(flag=flags[0], user=alice, acknowledgement="not_relevant", note="Seen in supervision")
    text = pdf_text(produce(clinic_a, "patient_report", "pdf", filters_for("patient_report", cast)))
    flagged = text.split("Flags One entry per event")[1].split("Sessions Session")[0]
    assert "Not relevant by Alice A on" in flagged and "Seen in supervision" in flagged
    assert "not yet acknowledged since" not in flagged
    assert flagged.count("Not yet acknowledged.") == 1


def test_the_pseudonymised_pdf_keeps_the_state_but_not_who_or_the_note(cast, clinic_a):
    kj_story(cast["ep_formula"])
    filters = filters_for("patient_report", cast, pseudonymise=True)
    text = pdf_text(produce(clinic_a, "patient_report", "pdf", filters))
    assert "Discussed with patient on" in text
    assert "Alice" not in text and FORMULA_NOTE not in text
