"""The caseload's rows and the patient page are rendered once per state and cached (issue 18):
after any sequence of writes, what a reader gets from the cache is exactly what a fresh render
gives; and the database's revision counter moves with every write the pages show."""

from __future__ import annotations

import itertools
import re
from datetime import date, time, timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings

from clinics.appointments import schedule_set
from clinics.models import Episode, Patient, Session
from clinics.services import session_create
from monitoring.care.patient_page import patient_page_key
from monitoring.care.rows import row_cache_key
from monitoring.clinic_admin.services import patient_erase
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_enter, submission_create
from monitoring.flags.services import flag_acknowledge
from monitoring.models import EpisodeRevision, Flag
from tests.auth import sign_in
from tests.writes import WRITES, applied

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def page(client: Client, path: str) -> bytes:
    response = client.get(path)
    assert response.status_code == 200, path
    return CSRF.sub(b'name="csrfmiddlewaretoken" value=""', response.content)


def revision(episode: Episode) -> int:
    return EpisodeRevision.objects.get(episode=episode).revision


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=WRITES)
def test_cached_pages_equal_a_fresh_render_after_any_sequence_of_writes(
    writes, clinic_a, alice, bob, dana, sam, django_capture_on_commit_callbacks
):
    """The caseload of a therapist, of an admin (with the therapist column) and of a supervisor,
    and each patient's page for an admin and for a supervisor (read-only, no messages), checked
    after every write: a stale entry from before the write would be served by the first read."""
    cache.clear()  # an example's rolled-back ids may return in the next one
    readers = {who: sign_in(Client(), who) for who in (alice, dana, sam)}
    with transaction.atomic():
        for step, kind, patients in applied(
            writes,
            clinic=clinic_a,
            alice=alice,
            bob=bob,
            dana=dana,
            capture=django_capture_on_commit_callbacks,
        ):
            reads = [(client, "/") for client in readers.values()] + [
                (readers[who], f"/patients/{patient.code}/")
                for patient in Patient.objects.filter(pk__in=[p.pk for p in patients])
                for who in (dana, sam)
                if who != sam or patient.therapist_id == alice.pk
            ]
            # Every page as the cache serves it (entries from the reads after the last write),
            # then every page rendered afresh.
            cached = [page(client, path) for client, path in reads]
            cache.clear()
            fresh = [page(client, path) for client, path in reads]
            for (_, path), before, after in zip(reads, cached, fresh, strict=True):
                assert before == after, (step, kind, path)
        transaction.set_rollback(True)


def test_every_write_a_page_shows_moves_the_episode_revision(episode, instrument, alice):
    """Through the ORM, a bulk insert, update() and a delete alike (database triggers)."""
    start = revision(episode)
    session = session_create(episode=episode, date=date(2026, 3, 2), status=Session.Status.HELD)
    assert revision(episode) > start
    steps = []

    def moved(label):
        steps.append((label, revision(episode)))

    invitation, _ = invitation_create(session=session, created_by=alice)
    moved("link")
    submission_create(invitation=invitation, answers={n: 4 for n in range(1, 13)}, message="Hello")
    moved("answers and message")
    Session.objects.filter(pk=session.pk).update(date=date(2026, 3, 3))
    moved("update()")
    schedule_set(
        patient=episode.patient,
        repeat="weekly",
        time=time(9),
        by=alice,
        starts_on=date.today() + timedelta(days=1),
    )
    moved("appointments")
    from monitoring.flags.services import episode_flags_refresh

    episode_flags_refresh(episode_id=episode.pk)
    moved("snapshot")
    session.delete()
    moved("delete")
    numbers = [start, *(n for _, n in steps)]
    assert all(b > a for a, b in itertools.pairwise(numbers)), steps


def test_a_new_episode_gets_its_counter_and_django_never_writes_it(patient, alice):
    episode = Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 2, 2))
    assert revision(episode) == 0
    session_create(episode=episode, date=date(2026, 2, 9))
    stale = Episode.objects.get(pk=episode.pk)
    stale.treatment = Episode.Treatment.CBT
    stale.save()  # a full save of an object read earlier
    assert revision(episode) == 1


def test_the_caseload_renders_only_the_rows_that_changed(client, clinic_a, alice, instrument, monkeypatch):
    from monitoring.care import rows

    sign_in(client, alice)
    for i in range(3):
        patient = Patient.objects.create(clinic=clinic_a, label=f"R{i}", therapist=alice)
        Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 1, 5))
    client.get("/")
    computed = []
    real = rows.caseload_rows

    def counted(*, patients, episodes=None):
        computed.extend(p.label for p in patients)
        return real(patients=patients, episodes=episodes)

    monkeypatch.setattr(rows, "caseload_rows", counted)
    client.get("/")
    assert computed == []
    episode = Episode.objects.get(patient__label="R1")
    session_create(episode=episode, date=date(2026, 1, 12), status=Session.Status.HELD)
    client.get("/")
    assert computed == ["R1"]


def test_erasing_a_patient_forgets_their_cached_row_and_page(
    client, episode, instrument, alice, dana, django_capture_on_commit_callbacks
):
    sign_in(client, alice)
    session = session_create(episode=episode, date=date(2026, 3, 2), status=Session.Status.HELD)
    response_enter(session=session, rater="patient", answers={n: 4 for n in range(1, 13)}, user=alice)
    patient = episode.patient
    keys = []
    for language in ("en", "de"):  # an entry per language: the erasure forgets them all
        client.get("/", HTTP_ACCEPT_LANGUAGE=language)
        client.get(f"/patients/{patient.code}/", HTTP_ACCEPT_LANGUAGE=language)
        keys += [row_cache_key(patient.pk, language), patient_page_key(patient.pk, True, language)]
    assert all(cache.get(key) is not None for key in keys)
    # Entries an earlier release wrote under keys without a language go too.
    legacy = [f"bordin:caseload-row:{patient.pk}", f"bordin:patient-page:{patient.pk}:1"]
    cache.set_many(dict.fromkeys(legacy, "an earlier release's entry"))
    keys += legacy
    with django_capture_on_commit_callbacks(execute=True):  # the caches are forgotten on commit
        patient_erase(patient=patient, by=dana, confirm=patient.label)
    assert all(cache.get(key) is None for key in keys)


def test_the_triggers_exist_on_this_database():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'bordin_revision_%'")
        else:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'bordin_revision_%'"
            )
        assert cursor.fetchone()[0] == 8 * 3 + 1


def test_each_language_gets_its_own_rendering(client, episode, alice):
    """Dates and words are rendered in the reader's language: a row cached for a German browser
    is not served to an English one."""
    sign_in(client, alice)
    session_create(episode=episode, date=date(2026, 3, 2), status=Session.Status.HELD)
    assert "2 Mär" in client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2 Mar" in english and "Mär" not in english
    # Each language keeps its own entry: the English reader did not replace the German row.
    german = cache.get(row_cache_key(episode.patient.pk, "de"))
    assert german is not None and "2 Mär" in "".join(german["html"].values())


def test_a_colleague_renamed_shows_at_once(client, dropped, alice, dana):
    """Who acknowledged a flag is named on the page; a new name moves no revision, yet shows."""
    flag = Flag.objects.filter(episode=dropped).first()
    flag_acknowledge(flag=flag, user=dana, acknowledgement="discussed")
    sign_in(client, alice)
    path = f"/patients/{dropped.patient.code}/"
    assert "Dana" in client.get(path).content.decode()
    dana.first_name = "Daniela"
    dana.save()
    assert "Daniela" in client.get(path).content.decode()


def test_a_page_rendered_while_its_patient_was_erased_is_not_kept(client, episode, alice, monkeypatch):
    """A read that passed its access check before the erasure committed writes its entry after the
    caches were forgotten: the write checks that the patient still exists."""
    from monitoring.care import patient_page

    sign_in(client, alice)
    patient = episode.patient
    real = patient_page.page_render

    def erased_meanwhile(**kwargs):
        Patient.objects.filter(pk=patient.pk).delete()  # the erasure commits during the render
        return real(**kwargs)

    monkeypatch.setattr(patient_page, "page_render", erased_meanwhile)
    client.get(f"/patients/{patient.code}/")
    assert cache.get(patient_page_key(patient.pk, True, "en")) is None
