"""The cast, as in every test module: alice (therapist) and her colleague bob work in clinic A,
dana is clinic A's admin, sam supervises alice there (read-only, not bob); charlie works in
clinic B, whose admin is erin. Anyone from clinic B must get 404 for clinic A's data."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import User

from clinics.models import Clinic, Episode, Membership, Patient, Session
from clinics.services import staff_create, supervision_set
from monitoring.models import ExportJob, Instrument

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate limits and used two-factor codes live in the cache: each test starts without them."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def clinic_a(db) -> Clinic:
    return Clinic.objects.create(slug="clinic-a", name="Clinic A")


@pytest.fixture
def clinic_b(db) -> Clinic:
    return Clinic.objects.create(slug="clinic-b", name="Clinic B")


@pytest.fixture
def alice(clinic_a) -> User:
    return staff_create(
        clinic=clinic_a, email="alice@a.test", name="Alice A", role="therapist", password=PASSWORD
    )


@pytest.fixture
def bob(clinic_a) -> User:
    return staff_create(
        clinic=clinic_a, email="bob@a.test", name="Bob A", role="therapist", password=PASSWORD
    )


@pytest.fixture
def dana(clinic_a) -> User:
    return staff_create(
        clinic=clinic_a, email="dana@a.test", name="Dana A", role=Membership.Role.ADMIN, password=PASSWORD
    )


@pytest.fixture
def sam(clinic_a, alice) -> User:
    """Clinic A's supervisor, with alice assigned (bob is not)."""
    user = staff_create(
        clinic=clinic_a, email="sam@a.test", name="Sam A", role=Membership.Role.SUPERVISOR, password=PASSWORD
    )
    supervision_set(
        supervisor=Membership.objects.get(user=user, clinic=clinic_a),
        therapists=[Membership.objects.select_related("user").get(user=alice, clinic=clinic_a)],
    )
    return user


@pytest.fixture
def charlie(clinic_b) -> User:
    return staff_create(
        clinic=clinic_b, email="charlie@b.test", name="Charlie B", role="therapist", password=PASSWORD
    )


@pytest.fixture
def erin(clinic_b) -> User:
    return staff_create(
        clinic=clinic_b, email="erin@b.test", name="Erin B", role=Membership.Role.ADMIN, password=PASSWORD
    )


@pytest.fixture
def instrument(db) -> Instrument:
    return Instrument.objects.get(code="bordin-alliance", version=1)


@pytest.fixture
def patient(clinic_a, alice) -> Patient:
    return Patient.objects.create(clinic=clinic_a, label="P.A.", therapist=alice, external_id="EXT-1")


@pytest.fixture
def episode(patient, alice) -> Episode:
    return Episode.objects.create(patient=patient, therapist=alice, started_on=date(2026, 9, 1))


@pytest.fixture
def session(episode) -> Session:
    return Session.objects.create(
        episode=episode, number=1, date=date(2026, 9, 1), status=Session.Status.HELD
    )


def finished_export(clinic: Clinic, requested_by: User, media_root: object) -> ExportJob:
    """A done CSV export job of ``clinic`` with its file under ``media_root``."""
    from pathlib import Path

    from django.utils import timezone

    job = ExportJob.objects.create(
        clinic=clinic,
        requested_by=requested_by,
        exporter="session_scores",
        format="csv",
        status="done",
        progress=100,
        finished_at=timezone.now(),
    )
    folder = Path(str(media_root)) / "exports" / str(job.code)
    folder.mkdir(parents=True)
    (folder / "scores.csv").write_text("patient,session\nP.A.,1\n")
    ExportJob.objects.filter(pk=job.pk).update(
        file_path=f"exports/{job.code}/scores.csv",
        filename="scores.csv",
        content_type="text/csv; charset=utf-8",
    )
    job.refresh_from_db()
    return job


@pytest.fixture
def dropped(episode, instrument) -> Episode:
    """Four steady sessions (total about 4) and a fifth at 2: a rupture at session 5."""
    from monitoring.flags.services import episode_flags_refresh
    from tests.flags.test_flags import add_session

    four = {n: 4 for n in range(1, 13)}
    for number in range(1, 5):
        add_session(episode, instrument, number, four if number % 2 else {**four, 3: 5})
    add_session(episode, instrument, 5, {n: 2 for n in range(1, 13)})
    episode_flags_refresh(episode_id=episode.pk)
    return episode
