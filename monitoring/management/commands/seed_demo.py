"""Create the demo clinic: staff, about 40 patients in therapy and 40 discharged, their item-level
alliance answers and their PHQ-9 and GAD-7 courses.

Deterministic (same ``--today`` and ``--seed``, same data) and idempotent (a second run changes
nothing unless ``--reset``). The answers come from ``monitoring.analytics.simulate``, the same
simulator the analytics tests use, so the demo shows every kind of flag.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from clinics.models import Clinic, Episode, Membership, Patient, Session
from clinics.services import staff_create, supervision_set
from monitoring.analytics.scoring import score_items_wide
from monitoring.analytics.simulate import simulate_cohort
from monitoring.analytics.simulate_symptoms import simulate_symptoms
from monitoring.collection.responses import ResponseEntry, responses_store
from monitoring.flags.services import clinic_estimate_refresh
from monitoring.instruments.measures import outcome_instruments
from monitoring.instruments.services import instruments_load_bundled
from monitoring.models import Instrument, Response, SafetyAlert
from monitoring.security.allauth import recovery_codes_activate, totp_activate

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-alliance-2026"  # noqa: S105 - printed by `make run`; demo data only
# Staff need an authenticator app (TOTP). The demo accounts share this published secret, so that
# anyone trying the demo can add it to an app, or print the current code with `make code`.
DEMO_TOTP_SECRET = "BORDINDEMOALLIANCEQRSTUV"  # noqa: S105 - demo data only
ADMIN = ("admin@demo.bordin.test", "Dana Admin")
THERAPISTS = (
    ("alice@demo.bordin.test", "Alice Hartmann"),
    ("bob@demo.bordin.test", "Bob Okafor"),
    ("carol@demo.bordin.test", "Carol Nguyen"),
)
#: A supervisor, with Alice and Bob assigned: their caseloads read-only, and the Team page.
SUPERVISOR = ("supervisor@demo.bordin.test", "Sam Supervisor")
SUPERVISED = 2  # the first two therapists
# The demo's mix of courses, so that every kind of flag and pattern appears on some patient.
DEMO_MIX = {
    "stable": 9,
    "growth": 5,
    "ceiling": 4,
    "rupture_repair": 9,
    "rupture_unrepaired": 4,
    "task_decline": 4,
    "sudden_gain": 2,
    "high_falling": 2,
    "low_rising": 1,
}
TREATMENTS = {
    "task_decline": Episode.Treatment.EXPOSURE,
    "rupture_unrepaired": Episode.Treatment.CBT,
    "rupture_repair": Episode.Treatment.PSYCHODYNAMIC,
}


def demo_logins() -> list[tuple[str, str, str]]:
    return (
        [(ADMIN[0], "clinic admin", DEMO_PASSWORD)]
        + [(e, "therapist", DEMO_PASSWORD) for e, _ in THERAPISTS]
        + [(SUPERVISOR[0], "supervisor", DEMO_PASSWORD)]
    )


def _labels(n: int, rng: np.random.Generator) -> list[str]:
    letters = "ABCDEFGHJKLMNPRSTVWZ"
    labels: list[str] = []
    while len(labels) < n:
        label = f"{rng.choice(list(letters))}.{rng.choice(list(letters))}."
        if label in labels:
            label = f"{label} {sum(x.startswith(label) for x in labels) + 1}"
        labels.append(label)
    return labels


class Command(BaseCommand):
    help = "Create the demo clinic with realistic synthetic patients (deterministic, idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=40)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)"
        )
        parser.add_argument("--reset", action="store_true", help="delete the demo clinic first")

    def handle(self, *args: Any, patients: int, seed: int, today: date | None, reset: bool, **o: Any) -> None:
        today = today or timezone.localdate()
        if reset:
            demo_delete()
        existing = Clinic.objects.filter(slug=DEMO_SLUG).first()
        if existing is not None:
            if demo_supervisor_add(clinic=existing):
                self.stdout.write(
                    f"The demo clinic exists already; its supervisor login {SUPERVISOR[0]} was added."
                )
                return
            self.stdout.write("The demo clinic exists already; nothing changed (use --reset to rebuild it).")
            return
        summary = demo_create(n_patients=patients, seed=seed, today=today)
        self.stdout.write(f"Demo clinic created: {summary}.")


def _supervisor_create(*, clinic: Clinic, therapists: list[User]) -> User:
    supervisor = staff_create(
        clinic=clinic,
        email=SUPERVISOR[0],
        name=SUPERVISOR[1],
        role=Membership.Role.SUPERVISOR,
        password=DEMO_PASSWORD,
    )
    supervision_set(
        supervisor=Membership.objects.get(user=supervisor, clinic=clinic),
        therapists=Membership.objects.filter(user__in=therapists[:SUPERVISED], clinic=clinic).select_related(
            "user"
        ),
    )
    return supervisor


@transaction.atomic
def demo_supervisor_add(*, clinic: Clinic) -> bool:
    """A demo clinic made before the supervisor role gets its supervisor login, so that the one
    `make run` prints works without --reset; False when it has it already."""
    if Membership.objects.filter(clinic=clinic, user__email=SUPERVISOR[0]).exists():
        return False
    therapists = [User.objects.get(email=email) for email, _ in THERAPISTS]
    supervisor = _supervisor_create(clinic=clinic, therapists=therapists)
    Authenticator.objects.filter(user=supervisor).delete()
    totp_activate(user=supervisor, secret=DEMO_TOTP_SECRET)
    recovery_codes_activate(user=supervisor)
    return True


def demo_delete() -> None:
    with transaction.atomic():
        clinic = Clinic.objects.filter(slug=DEMO_SLUG).first()
        if clinic is None:
            return
        Response.objects.filter(session__episode__patient__clinic=clinic).delete()
        Patient.objects.filter(clinic=clinic).delete()
        clinic.delete()


@transaction.atomic
def demo_create(*, n_patients: int, seed: int, today: date) -> str:
    instruments_load_bundled()
    instrument = Instrument.objects.get(code="bordin-alliance", version=1)
    clinic = Clinic.objects.create(
        slug=DEMO_SLUG,
        name="Lindenhof Psychotherapy Centre (demo)",
        therapist_rating_enabled=True,
        outcome_measures=["phq9", "gad7"],
    )
    staff_create(
        clinic=clinic, email=ADMIN[0], name=ADMIN[1], role=Membership.Role.ADMIN, password=DEMO_PASSWORD
    )
    therapists = [
        staff_create(clinic=clinic, email=e, name=n, role=Membership.Role.THERAPIST, password=DEMO_PASSWORD)
        for e, n in THERAPISTS
    ]
    _supervisor_create(clinic=clinic, therapists=therapists)
    for user in User.objects.filter(memberships__clinic=clinic):
        Authenticator.objects.filter(user=user).delete()  # a rebuilt demo keeps the published secret
        totp_activate(user=user, secret=DEMO_TOTP_SECRET)
        recovery_codes_activate(user=user)

    items, therapist_items, truth = _demo_cohort(n_patients, seed)
    finished_items, _, finished_truth = _finished_cohort(n_patients, seed)
    rng = np.random.default_rng(seed)
    labels = _labels(len(truth) + len(finished_truth), rng)
    therapist_by_patient = {
        pid: frame.sort_values("session") for pid, frame in therapist_items.groupby("patient")
    }
    symptoms = _demo_symptoms(
        pd.concat([items, finished_items]), {**_courses(truth), **_courses(finished_truth)}, seed
    )

    therapist_form = Instrument.objects.get(code="bordin-alliance-therapist", version=1)
    entries: dict[str, list[ResponseEntry]] = {"alliance": [], "therapist": [], "phq9": [], "gad7": []}
    courses: list[tuple[Any, pd.DataFrame, Any, date | None]] = [
        (pid, frame, truth.loc[pid, "scenario"], None) for pid, frame in sorted(items.groupby("patient"))
    ]
    # Patients discharged over the past year: the clinic's finished episodes, for its outcome
    # rates, its expected-recovery curves and the alliance-outcome link of the clinic report.
    for k, (pid, frame) in enumerate(sorted(finished_items.groupby("patient"))):
        courses.append((pid, frame, finished_truth.loc[pid, "scenario"], today - timedelta(days=20 + 11 * k)))
    for index, (pid, frame, scenario, ended) in enumerate(courses):
        therapist = therapists[index % len(therapists)]
        frame = frame.sort_values("session")
        n = len(frame)
        # Weekly sessions, the last one within the past ten days; one in eight patients has not
        # yet filled in the form for their last session, as in any real clinic.
        last_day = ended or today - timedelta(days=int(rng.integers(0, 10)))
        missing_last = ended is None and index % 8 == 5
        patient = Patient.objects.create(
            clinic=clinic,
            label=labels[index],
            therapist=therapist,
            external_id=f"DEMO-{index + 1:04d}",
            is_active=ended is None,
        )
        episode = Episode.objects.create(
            patient=patient,
            therapist=therapist,
            treatment=TREATMENTS.get(
                str(scenario), [Episode.Treatment.CBT, Episode.Treatment.PSYCHODYNAMIC][index % 2]
            ),
            started_on=last_day - timedelta(weeks=n - 1),
            ended_on=ended,
        )
        sessions = Session.objects.bulk_create(
            Session(
                episode=episode, number=k, date=last_day - timedelta(weeks=n - k), status=Session.Status.HELD
            )
            for k in range(1, n + 1)
        )
        if ended is None:
            Session.objects.create(
                episode=episode,
                number=n + 1,
                date=last_day + timedelta(weeks=1),
                status=Session.Status.SCHEDULED,
            )
        own_symptoms = symptoms.get(pid, {})
        for session, (_, row) in zip(sessions, frame.iterrows(), strict=True):
            if missing_last and session.number == n:
                continue
            submitted = timezone.make_aware(datetime.combine(session.date, time.min) + timedelta(hours=17))
            source = Response.Source.LINK if index % 3 else Response.Source.TABLET
            entries["alliance"].append(
                ResponseEntry(
                    session=session,
                    answers={k: int(row[f"item_{k}"]) for k in range(1, 13)},
                    source=source,
                    submitted_at=submitted,
                )
            )
            for code, answers in own_symptoms.get(session.number, {}).items():
                entries[code].append(
                    ResponseEntry(session=session, answers=answers, source=source, submitted_at=submitted)
                )
            if therapist == therapists[0] and ended is None:
                # Alice also rates her sessions with the therapist form (the clinic has it on).
                own = therapist_by_patient[pid].set_index("session").loc[session.number]
                entries["therapist"].append(
                    ResponseEntry(
                        session=session,
                        answers={k: int(own[f"item_{k}"]) for k in range(1, 13)},
                        source=Response.Source.STAFF,
                        submitted_at=submitted + timedelta(minutes=5),
                        entered_by=therapist,
                    )
                )
    # Through the one write path for answers, like every form and import: the patients' episodes
    # are analysed (flags stored) when this transaction commits, risk answers raise safety alerts.
    responses_store(instrument=instrument, entries=entries["alliance"])
    responses_store(instrument=therapist_form, entries=entries["therapist"])
    for code, measure in outcome_instruments(["phq9", "gad7"]).items():
        responses_store(instrument=measure, entries=entries[code])
    _demo_follow_ups(clinic=clinic, today=today)
    clinic_estimate_refresh(clinic=clinic)  # the clinic's reference values, before the analysis
    count = sum(len(e) for e in entries.values())
    return (
        f"{len(truth)} patients in therapy and {len(finished_truth)} discharged, {count} responses, "
        f"{len(therapists)} therapists"
    )


#: Symptom course of each alliance scenario in the demo (monitoring.analytics.simulate_symptoms):
#: a rupture left unrepaired or a falling alliance goes with worsening symptoms, a decline of
#: task agreement with a stalled course; most patients improve.
SYMPTOM_COURSE = {
    "rupture_unrepaired": "deteriorating",
    "high_falling": "deteriorating",
    "task_decline": "flat",
}


def _courses(truth: pd.DataFrame) -> dict[str, str]:
    return {
        str(pid): SYMPTOM_COURSE.get(str(scenario), "improving")
        for pid, scenario in truth["scenario"].items()
    }


def _demo_symptoms(
    items: pd.DataFrame, courses: dict[str, str], seed: int
) -> dict[str, dict[int, dict[str, dict[int, int]]]]:
    """PHQ-9 and GAD-7 answers per patient, session and measure, following each alliance course
    (a session above the patient's usual task agreement is followed by fewer symptoms)."""
    alliance = score_items_wide(items[["patient", "session", *(f"item_{k}" for k in range(1, 13))]])
    cohort = simulate_symptoms(alliance, seed=seed, courses=courses, within=-2.0, scale="task")
    out: dict[str, dict[int, dict[str, dict[int, int]]]] = {}
    for row in cohort.answers.itertuples(index=False):
        count = 9 if row.measure == "phq9" else 7
        out.setdefault(str(row.patient), {}).setdefault(int(row.session), {})[str(row.measure)] = {
            k: int(getattr(row, f"item_{k}")) for k in range(1, count + 1)
        }
    return out


def _demo_follow_ups(*, clinic: Clinic, today: date) -> None:
    """Every safety alert but the newest of a patient in therapy was followed up by the therapist
    (and notified long ago): the demo caseload opens with one open alert, as a clinic would."""
    alerts = SafetyAlert.objects.filter(episode__patient__clinic=clinic).select_related("episode", "session")
    open_one = alerts.filter(episode__ended_on=None).order_by("-session__date", "pk").first()
    for alert in alerts:
        if open_one is not None and alert.pk == open_one.pk:
            continue
        when = timezone.make_aware(datetime.combine(alert.session.date + timedelta(days=1), time(10)))
        SafetyAlert.objects.filter(pk=alert.pk).update(
            notified_at=alert.raised_at,
            followed_up_at=when,
            followed_up_by=alert.episode.therapist,
            follow_up=SafetyAlert.FollowUp.SEEN,
            follow_up_note="Asked about it in the next session: passive thoughts, no plans or intent; "
            "safety plan reviewed and crisis numbers given.",
        )


def _finished_cohort(n_patients: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Discharged patients (as many as in therapy, 8-16 sessions), the clinic's usual mix."""
    cohort = simulate_cohort(max(10, n_patients), seed=seed + 100, sessions=(8, 16))
    frames = [
        frame.assign(patient="done-" + frame["patient"].astype(str))
        for frame in (cohort.items, cohort.therapist_items, cohort.truth)
    ]
    return frames[0], frames[1], frames[2].set_index("patient")


def _demo_cohort(n_patients: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulated courses in the demo mix (scaled to ``n_patients``), with unique patient keys."""
    total = sum(DEMO_MIX.values())
    items: list[pd.DataFrame] = []
    therapist_items: list[pd.DataFrame] = []
    truth: list[pd.DataFrame] = []
    for offset, (scenario, weight) in enumerate(DEMO_MIX.items()):
        count = max(1, round(weight * n_patients / total))
        cohort = simulate_cohort(count, seed=seed + offset, sessions=(8, 30), scenarios={scenario: 1.0})
        for frame, out in (
            (cohort.items, items),
            (cohort.therapist_items, therapist_items),
            (cohort.truth, truth),
        ):
            out.append(frame.assign(patient=scenario + "-" + frame["patient"].astype(str)))
    return pd.concat(items), pd.concat(therapist_items), pd.concat(truth).set_index("patient")
