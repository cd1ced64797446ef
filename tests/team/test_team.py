"""The team page (issue 16, item 7): figures recomputed by hand on a small clinic whose every
session, flag and acknowledgement is known, who sees whose figures, and the page itself.

Today is Friday 20 November 2026; "last 4 weeks" is 24 Oct to 20 Nov, the 4 weeks before are
26 Sep to 23 Oct. Alice (supervised by sam) has three episodes, Bob one:

E1, alice, in therapy since 1 Sep. Sessions: 5, 12, 19 Sep held (before both periods); 3 Oct held,
   form in; 10 Oct did not attend; 17 Oct held, no form; 31 Oct held, form in; 7 Nov cancelled;
   14 Nov held, form in; 21 Nov booked (after today: left out). Flags: a rupture at 3 Oct (alarm,
   raised 4 Oct 10:00, acknowledged 5 Oct 10:00: 24 hours), the same rupture on task (not an
   alarm, never acknowledged); a sudden loss at 17 Oct (alarm, raised 18 Oct, acknowledged 28 Oct,
   after the earlier period ended); unrepaired at 31 Oct (alarm, of the rupture of session 4,
   never acknowledged: found more than 14 days before 20 Nov); a decline at 14 Nov (alarm, raised
   15 Nov 08:00, acknowledged 20:00: 12 hours). Alice rates sessions too: 3 Oct she 3.0, the
   patient 4.0 (gap -1); 31 Oct 5.0 vs 4.0 (+1); 14 Nov 4.5 vs 4.0 (+0.5).
E2, alice, 1 Oct to 30 Oct: held 2 and 9 Oct, forms in; ended after 2 sessions (early). Rated by
   both on 2 Oct, 5.0 and 5.0 (gap 0).
E3, alice, since 1 Aug: held 5 and 12 Aug, and 30 Sep (no form); nothing since: no held session in
   the last 4 weeks of this period (51 days), but one in the earlier period's (23 days).
E4, bob, since 1 Oct: held 28 Oct, form in; did not attend 4 Nov. A rupture at 28 Oct (alarm,
   not acknowledged).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.utils import timezone

from clinics.models import Episode, Patient, Session
from monitoring.collection.responses import response_create
from monitoring.models import Flag, Instrument
from monitoring.team.selectors import periods, team_report
from tests.auth import sign_in

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 20)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(2026, month, day, hour))


def episode(clinic, therapist, label: str, started: date, ended: date | None = None) -> Episode:
    patient = Patient.objects.create(clinic=clinic, label=label, therapist=therapist, is_active=ended is None)
    return Episode.objects.create(patient=patient, therapist=therapist, started_on=started, ended_on=ended)


def sessions(ep: Episode, *rows: tuple[date, str]) -> list[Session]:
    return [
        Session.objects.create(episode=ep, number=n, date=when, status=status)
        for n, (when, status) in enumerate(rows, start=1)
    ]


def rated(session: Session, patient: float, therapist: float | None = None) -> None:
    """The patient's answers (every item the same) and, if given, the therapist's (a total of
    4.5 is six 4s and six 5s)."""
    form = Instrument.objects.get(code="bordin-alliance", version=1)
    response_create(
        session=session, instrument=form, answers=dict.fromkeys(range(1, 13), int(patient)), source="link"
    )
    if therapist is not None:
        own = Instrument.objects.get(code="bordin-alliance-therapist", version=1)
        answers = {
            n: int(therapist) if therapist == int(therapist) or n % 2 else int(therapist) + 1
            for n in range(1, 13)
        }
        response_create(session=session, instrument=own, answers=answers, source="staff")


def flag(
    session: Session,
    kind: str,
    *,
    raised: datetime,
    acknowledged: datetime | None = None,
    alarm: bool = True,
    scale: str = "total",
    **detail,
) -> Flag:
    row = Flag.objects.create(
        episode=session.episode,
        session=session,
        scale=scale,
        kind=kind,
        alarm=alarm,
        magnitude=1,
        explanation=".",
        detail=detail,
        acknowledgement="discussed" if acknowledged else "",
        acknowledged_at=acknowledged,
    )
    Flag.objects.filter(pk=row.pk).update(created_at=raised)
    return row


@pytest.fixture
def known(clinic_a, alice, bob, sam):
    held, no_show, cancelled, booked = "held", "no_show", "cancelled", "scheduled"
    e1 = episode(clinic_a, alice, "E1", date(2026, 9, 1))
    s = sessions(
        e1,
        (date(2026, 9, 5), held),
        (date(2026, 9, 12), held),
        (date(2026, 9, 19), held),
        (date(2026, 10, 3), held),
        (date(2026, 10, 10), no_show),
        (date(2026, 10, 17), held),
        (date(2026, 10, 31), held),
        (date(2026, 11, 7), cancelled),
        (date(2026, 11, 14), held),
        (date(2026, 11, 21), booked),
    )
    for early in s[:3]:
        rated(early, 4)
    rated(s[3], 4, 3)
    rated(s[6], 4, 5)
    rated(s[8], 4, 4.5)
    flag(s[3], "rupture", raised=at(10, 4, 10), acknowledged=at(10, 5, 10))
    flag(s[3], "rupture", raised=at(10, 4, 10), alarm=False, scale="task")
    flag(s[5], "sudden_loss", raised=at(10, 18), acknowledged=at(10, 28))
    flag(s[6], "unrepaired", raised=at(11, 1, 9), rupture_session=4)
    flag(s[8], "decline", raised=at(11, 15, 8), acknowledged=at(11, 15, 20))

    e2 = episode(clinic_a, alice, "E2", date(2026, 10, 1), ended=date(2026, 10, 30))
    s2 = sessions(e2, (date(2026, 10, 2), held), (date(2026, 10, 9), held))
    rated(s2[0], 5, 5)
    rated(s2[1], 4)

    e3 = episode(clinic_a, alice, "E3", date(2026, 8, 1))
    sessions(e3, (date(2026, 8, 5), held), (date(2026, 8, 12), held), (date(2026, 9, 30), held))

    e4 = episode(clinic_a, bob, "E4", date(2026, 10, 1))
    s4 = sessions(e4, (date(2026, 10, 28), held), (date(2026, 11, 4), no_show))
    rated(s4[0], 4)
    flag(s4[0], "rupture", raised=at(10, 29))


def figures(f) -> dict:
    return {
        "patients": f.patients,
        "open": f.open_flags,
        "long unrepaired": f.long_unrepaired,
        "raised": f.raised,
        "acknowledged": f.acknowledged,
        "median hours": f.median_hours_to_acknowledge,
        "held": f.held,
        "forms in": f.forms_in,
        "no-shows": f.no_shows,
        "held or missed": f.attended_or_missed,
        "episodes": f.episodes,
        "ended early": f.ended_early,
        "lapsed": f.lapsed,
        "gap": f.gap,
        "gap patients": f.gap_patients,
        "gap sessions": f.gap_sessions,
    }


ALICE_THIS = {
    "patients": 2,  # E1, E3 (E2 ended on 30 Oct)
    "open": 1,  # the unrepaired rupture; the decline is acknowledged
    "long unrepaired": 1,  # found on 31 Oct, before 6 Nov
    "raised": 2,  # sessions of 31 Oct and 14 Nov
    "acknowledged": 1,  # 14 Nov
    "median hours": 12.0,
    "held": 2,  # 31 Oct, 14 Nov (7 Nov cancelled, 21 Nov after today)
    "forms in": 2,
    "no-shows": 0,
    "held or missed": 2,
    "episodes": 3,
    "ended early": 1,  # E2: 2 sessions
    "lapsed": 1,  # E3: 51 days since 30 Sep
    "gap": 0.75,  # E1: (+1 + 0.5) / 2
    "gap patients": 1,
    "gap sessions": 2,
}
ALICE_BEFORE = {
    "patients": 3,  # E1, E2, E3 all open on 23 Oct
    "open": 1,  # the sudden loss of 17 Oct, acknowledged only on 28 Oct
    "long unrepaired": 0,
    "raised": 2,  # 3 Oct (the task rupture is no alarm) and 17 Oct
    "acknowledged": 1,  # 3 Oct, after 24 hours
    "median hours": 24.0,
    "held": 5,  # E1 3 and 17 Oct, E2 2 and 9 Oct, E3 30 Sep
    "forms in": 3,  # E1 3 Oct, E2 both
    "no-shows": 1,  # E1 10 Oct
    "held or missed": 6,
    "episodes": 3,
    "ended early": 0,
    "lapsed": 0,  # E3: 23 days since 30 Sep
    "gap": -0.5,  # E1 -1, E2 0: (-1 + 0) / 2
    "gap patients": 2,
    "gap sessions": 2,
}
BOB_THIS = {
    "patients": 1,
    "open": 1,
    "long unrepaired": 0,
    "raised": 1,
    "acknowledged": 0,
    "median hours": None,
    "held": 1,
    "forms in": 1,
    "no-shows": 1,
    "held or missed": 2,
    "episodes": 1,
    "ended early": 0,
    "lapsed": 0,  # 23 days since 28 Oct
    "gap": None,
    "gap patients": 0,
    "gap sessions": 0,
}
BOB_BEFORE = {
    **BOB_THIS,
    "open": 0,
    "raised": 0,
    "held": 0,
    "forms in": 0,
    "no-shows": 0,
    "held or missed": 0,
}


def test_the_periods_end_today_and_the_one_before_has_the_same_length():
    this, last = periods("4w", TODAY)
    assert (this.start, this.end, last.start, last.end) == (
        date(2026, 10, 24),
        TODAY,
        date(2026, 9, 26),
        date(2026, 10, 23),
    )
    this, last = periods("quarter", TODAY)
    assert (this.end - this.start).days + 1 == 91 and (last.end - last.start).days + 1 == 91
    assert last.end == date(2026, 8, 21)


def test_the_figures_of_a_known_clinic_for_its_admin(known, dana, clinic_a):
    report = team_report(clinic=clinic_a, user=dana, period="4w", today=TODAY)
    assert [r.name for r in report.rows] == ["Alice A", "Bob A"], "by name"
    alice, bob = report.rows
    assert figures(alice.this) == ALICE_THIS
    assert figures(alice.last) == ALICE_BEFORE
    assert figures(bob.this) == BOB_THIS
    assert figures(bob.last) == BOB_BEFORE
    total = report.total.this
    assert (total.open_flags, total.raised, total.acknowledged, total.held, total.forms_in) == (2, 3, 1, 3, 3)
    assert (total.no_shows, total.episodes, total.dropouts, total.gap) == (1, 4, 2, 0.75)
    assert report.rates_sessions
    assert alice.this.acknowledged_share == 0.5 and alice.this.completion == 1.0
    assert alice.last.no_show_share == pytest.approx(1 / 6) and alice.this.dropout_share == pytest.approx(
        2 / 3
    )


def test_a_supervisor_sees_only_the_therapists_assigned_to_them(known, sam, clinic_a):
    report = team_report(clinic=clinic_a, user=sam, period="4w", today=TODAY)
    assert [r.name for r in report.rows] == ["Alice A"]
    assert figures(report.rows[0].this) == ALICE_THIS
    assert figures(report.total.this) == ALICE_THIS, "the total is of the shown therapists only"


def test_the_team_page_for_a_supervisor_is_audited_and_names_no_patient(known, sam, clinic_a):
    client = sign_in(Client(), sam)
    response = client.get("/team/clinic-a/?period=quarter")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alice A" in html and "Bob A" not in html
    assert "Last 13 weeks (a quarter)" in html and "never to rank colleagues" in html
    for label in ("E1", "E2", "E3", "E4"):
        assert f">{label}<" not in html
    entry = LogEntry.objects.filter(actor=sam, action=LogEntry.Action.ACCESS).latest("timestamp")
    assert entry.additional_data["what"] == "team page"
    assert entry.additional_data["period"] == "quarter"
    assert entry.additional_data["clinic"] == clinic_a.pk


def test_a_supervisor_with_no_therapists_is_told_who_assigns_them(clinic_a, alice, sam):
    from clinics.models import Membership, SupervisorAssignment

    SupervisorAssignment.objects.filter(supervisor__user=sam).delete()
    html = sign_in(Client(), sam).get("/team/clinic-a/").content.decode()
    assert "No therapists are assigned to you yet" in html
    assert Membership.objects.overseen_by(sam).count() == 0


def test_an_unknown_period_falls_back_to_four_weeks(known, dana):
    html = sign_in(Client(), dana).get("/team/clinic-a/?period=forever").content.decode()
    assert '<option value="4w" selected>' in html


def test_open_flags_are_the_caseloads_badges_on_the_demo_clinic(django_capture_on_commit_callbacks):
    """On the demo clinic (every kind of flag, ruptures repaired and not), each therapist's open
    flags today are their caseload's flag badges: one per open event (monitoring.flags.events)."""
    from django.core.management import call_command

    from clinics.models import Clinic, Membership
    from monitoring.care.selectors import caseload_for_user

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", patients=24, today=TODAY)
    clinic = Clinic.objects.get(slug="demo")
    admin = Membership.objects.get(clinic=clinic, role="admin").user
    report = team_report(clinic=clinic, user=admin, period="4w", today=TODAY)
    assert len(report.rows) == 3
    for row in report.rows:
        assert row.membership is not None
        badges = [b.kind for r in caseload_for_user(user=row.membership.user) for b in r.badges]
        assert row.this.open_flags == len(badges), row.name
        assert row.this.long_unrepaired <= badges.count("unrepaired"), row.name
    assert report.total.this.open_flags >= 3, "the demo has patients who need attention"
