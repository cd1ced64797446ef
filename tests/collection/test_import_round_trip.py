"""The import path end to end, as docs/import.md tells an operator to run it: export a clinic's
item answers, import the file into a fresh, empty clinic with the command, run the documented
steps, and the fresh clinic stores the same flags (kind, scale, session, alarm) and its analysis
gives the same levels as the source."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from django.core.management import call_command

from clinics.models import Clinic
from clinics.services import staff_create
from monitoring.exports import EXPORTS, ExportFilters
from monitoring.models import ClinicEstimate, Flag

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)


def stored_flags(clinic: Clinic) -> pd.DataFrame:
    # The import carries the patient's ratings: the two-perspectives flags, which rest on the
    # therapist's ratings too, are the source's alone (docs/import.md).
    flags = Flag.objects.filter(episode__patient__clinic=clinic).exclude(kind=Flag.Kind.PERSPECTIVE_GAP)
    rows = flags.values_list("episode__patient__label", "session__number", "scale", "kind", "alarm")
    frame = pd.DataFrame.from_records(list(rows), columns=["patient", "session", "scale", "kind", "alarm"])
    return frame.sort_values(list(frame.columns), ignore_index=True)


def levels(clinic: Clinic, *, end: date | None = None) -> pd.DataFrame:
    """The patient levels export without the columns the import layout does not carry (the
    therapist is the import's, the treatment and episode start are the import's defaults)."""
    frame = EXPORTS["patient_levels"].frame(clinic=clinic, filters=ExportFilters(end=end))
    frame = frame.drop(columns=["external_id", "therapist", "treatment", "episode_start"])
    return frame.sort_values(["patient", "scale"], ignore_index=True)


def test_an_export_imported_into_a_fresh_clinic_stores_the_same_flags_and_levels(
    tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", patients=12, today=TODAY)
    source = Clinic.objects.get(slug="demo")
    out = tmp_path / "answers.csv"
    call_command("export_report", "item_answers", clinic="demo", format="csv", out=str(out))

    fresh = Clinic.objects.create(slug="fresh", name="Fresh")
    staff_create(clinic=fresh, email="t@fresh.test", role="therapist")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_responses", str(out), clinic="fresh", therapist="t@fresh.test")

    # The import analysed every episode on commit, after estimating the fresh clinic's reference
    # values from the whole file (its first estimate): the same flags and levels as the source.
    flags = stored_flags(source)
    assert len(flags) > 10 and flags["alarm"].any()
    pd.testing.assert_frame_equal(stored_flags(fresh), flags)
    pd.testing.assert_frame_equal(levels(fresh), levels(source))  # the stored snapshots
    pd.testing.assert_frame_equal(levels(fresh, end=TODAY), levels(source, end=TODAY))  # analysed anew
    assert ClinicEstimate.objects.filter(clinic=fresh).count() == 1

    # The nightly re-estimate (docs/import.md step 3) keeps them equal; stored flags never change.
    call_command("estimate_clinics", stdout=io.StringIO())
    assert ClinicEstimate.objects.filter(clinic=fresh).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        call_command("analyse_stale", stdout=io.StringIO())
    pd.testing.assert_frame_equal(stored_flags(fresh), flags)
    pd.testing.assert_frame_equal(stored_flags(source), flags)
    pd.testing.assert_frame_equal(levels(fresh), levels(source))
    pd.testing.assert_frame_equal(levels(fresh, end=TODAY), levels(source, end=TODAY))
