"""Staff pages. Each view starts with a selector that returns 404 for anything the user may not
see, then calls one service for a write; domain errors become a message on the page."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import date
from datetime import time as dt_time
from importlib.metadata import version
from io import BytesIO

import pandas as pd
import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from clinics import appointments
from clinics.errors import ApplicationError
from clinics.models import FormChannel, Session
from clinics.permissions import may_change, may_rate_session, patients_visible_to, require_may_change
from clinics.selectors import patient_get_for_user, session_get_for_user
from monitoring import charts
from monitoring.care import patient_page
from monitoring.care.messages import patient_messages_read
from monitoring.care.release import source_digest
from monitoring.care.rows import caseload_fragments, rows_html
from monitoring.care.selectors import (
    PatientDashboard,
    caseload_patients,
    notifications_unread,
    patient_dashboard,
    therapists_for_admin,
    usual_level,
)
from monitoring.collection import links, safety, sessions
from monitoring.collection.invitations import (
    invitation_create,
    invitation_revoke,
    invitation_send,
    session_mark_held,
)
from monitoring.exports import services as export_services
from monitoring.flags import events
from monitoring.flags import services as flags_services
from monitoring.flags.selectors import ATTENTION_WINDOW, flag_get_for_user
from monitoring.flags.services import notifications_mark_read
from monitoring.flags.snapshots import charts_cache_key
from monitoring.instruments.measures import clinic_measures
from monitoring.models import Flag, Invitation, Rater, SafetyAlert
from monitoring.security.audit import access_log, access_log_list
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required

#: Part of every cached fragment's key: a new release renders afresh. The package's version does
#: not move with every deployment, so the digest of the code and templates is part of it too.
CODE_VERSION = f"{version('bordin')}:{charts.CHARTS_FORMAT}:{source_digest()}"


@login_required
def caseload(request: AuthenticatedRequest) -> HttpResponse:
    """The therapist's home page: who needs attention now, and why."""
    therapists = therapists_for_admin(user=request.user)
    try:
        therapist_id = int(request.GET.get("therapist", "")) if therapists else None
    except ValueError:
        therapist_id = None
    query = request.GET.get("q", "").strip()[:60]
    # Each row rendered once per state of what it shows (monitoring.care.rows).
    rows, show_symptoms = caseload_fragments(
        patients_query=caseload_patients(user=request.user, therapist_id=therapist_id, query=query),
        therapists=bool(therapists),
        code_version=CODE_VERSION,
    )
    access_log_list(
        actor=request.user, what="caseload", patients=[r.patient for r in rows], path=request.path
    )
    attention, others = [r for r in rows if r.attention], [r for r in rows if not r.attention]
    notifications = notifications_unread(user=request.user)
    return render(
        request,
        "care/caseload.html",
        {
            "rows": rows,
            "attention": attention,
            "attention_html": rows_html(attention),
            "safety": [r for r in rows if r.safety],
            "show_symptoms": show_symptoms,
            "others": others,
            "others_html": rows_html(others),
            "therapists": therapists,
            "therapist_id": therapist_id,
            "query": query,
            "notifications": notifications,
            "has_patients": bool(rows) or patients_visible_to(user=request.user).exists(),
            "window": ATTENTION_WINDOW,
        },
    )


@login_required
@require_POST
def notifications_read(request: AuthenticatedRequest) -> HttpResponse:
    notifications_mark_read(user=request.user)
    return redirect("monitoring:caseload")


@login_required
def patient_detail(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """One patient's alliance: own level, deviations, flags with their reasons, the answers.

    The content is rendered once per state of what it shows (monitoring.care.patient_page)."""
    patient = patient_get_for_user(user=request.user, code=code)
    can_change = may_change(user=request.user, patient=patient)
    digest = patient_page.page_digest(patient=patient, may_change=can_change, code_version=CODE_VERSION)
    content = patient_page.page_cached(patient=patient, may_change=can_change, digest=digest)
    if content is None:
        dashboard = patient_dashboard(user=request.user, code=code)
        content = patient_page.page_render(
            patient=patient,
            may_change=can_change,
            digest=digest,
            context=_patient_context(request, dashboard, can_change=can_change),
        )
    else:
        # The messages are read (and the read audited) whether or not the page was cached.
        patient_messages_read(
            user=request.user,
            patient=patient,
            sessions=content.sessions,
            path=request.path,
            may_read=can_change,
        )
    access_log(actor=request.user, instance=patient, what="patient page", path=request.path)
    # Every flag of every event shown (a story's rupture and its unrepaired rupture notify apart).
    notifications_mark_read(user=request.user, flag_ids=content.flag_ids)
    return render(
        request,
        "care/patient.html",
        {"patient": patient, "body": content.for_request(request), "has_charts": content.has_charts},
    )


def _patient_context(
    request: AuthenticatedRequest, dashboard: PatientDashboard, *, can_change: bool
) -> dict[str, object]:
    return {
        "d": dashboard,
        "patient": dashboard.patient,
        "episode": dashboard.episode,
        "charts_html": _patient_charts_html(dashboard),
        "open_flags": sum(f.counts for f in dashboard.flags),
        "total_level": dashboard.levels.get("total"),
        "usual": usual_level(dashboard.snapshot),
        "latest": next((r for r in dashboard.sessions if r.scores.get("total") is not None), None),
        "patient_messages": patient_messages_read(
            user=request.user,
            patient=dashboard.patient,
            sessions=[r.session for r in dashboard.sessions],
            path=request.path,
            may_read=can_change,
        ),
        "today": date.today(),
        "choices": Flag.Acknowledgement.choices,
        "follow_ups": SafetyAlert.FollowUp.choices,
        "can_change": can_change,
    }


@login_required
def patient_review(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """The patient's own course in their words, full screen, for therapist and patient to go
    over together in a session: their answers and how they have been feeling, no flags."""
    dashboard = patient_dashboard(user=request.user, code=code)
    access_log(actor=request.user, instance=dashboard.patient, what="review with patient", path=request.path)
    figures: dict[str, charts.Chart] = {}
    frames = dashboard.frames
    if frames is not None:
        dates = {row.session.number: row.session.date for row in dashboard.sessions}
        figures["alliance"] = charts.review_alliance(sessions=frames.sessions, session_dates=dates)
        courses = dashboard.outcomes.courses
        if courses:
            figures["symptoms"] = charts.review_symptoms(
                scores=pd.DataFrame(
                    [(n, code, v) for code, c in courses.items() for n, v in c.scores],
                    columns=["session", "measure", "score"],
                ),
                measures={code: c.spec for code, c in courses.items()},
                session_dates=dates,
            )
    return render(request, "care/review.html", {"patient": dashboard.patient, "figures": figures})


#: How long a patient page's rendered charts stay cached (one entry per episode, replaced when what
#: they show changes), so this only bounds the memory of pages nobody opens again.
CHARTS_CACHE_SECONDS = 7 * 24 * 3600


def _patient_charts_html(dashboard: PatientDashboard) -> SafeString:
    """The patient page's charts section, rendered once per state of what it shows and cached
    (docs/performance.md): one cache entry per episode, holding the digest of the state it was
    rendered for (the snapshot's version and time, session dates, symptom courses, therapist
    ratings, flags, the code's version) with the HTML; a new answer, date, flag or deployment
    renders it again and replaces the entry. Erasing the patient deletes it
    (:func:`charts_cache_forget`)."""
    snapshot = dashboard.snapshot
    key = digest = None
    if snapshot is not None and snapshot.analysed_at is not None:
        inputs = repr(
            (
                CODE_VERSION,
                snapshot.version,
                snapshot.analysed_at.timestamp(),
                [(r.session.number, r.session.date, r.session.status) for r in dashboard.sessions],
                [
                    (code, c.scores, c.expected, c.curve_source)
                    for code, c in dashboard.outcomes.courses.items()
                ],
                dashboard.therapist_scores.to_csv(index=False),
                [(f.flag.pk, f.flag.acknowledgement, [o.pk for o in f.others]) for f in dashboard.flags],
            )
        )
        digest = hashlib.sha256(inputs.encode()).hexdigest()
        key = charts_cache_key(snapshot.episode_id)
        cached = cache.get(key)
        if isinstance(cached, tuple) and cached[0] == digest:
            return mark_safe(cached[1])  # noqa: S308 (our own template's output, cached as rendered)
    html = render_to_string("care/_charts.html", {"figures": _patient_figures(dashboard)}).strip()
    if key is not None:
        cache.set(key, (digest, html), CHARTS_CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308 (rendered by our template, autoescaped)


def _patient_figures(dashboard: PatientDashboard) -> dict[str, charts.Chart]:
    """The patient page's charts, from the episode's analysis."""
    frames = dashboard.frames
    if frames is None:
        return {}
    dates = {row.session.number: row.session.date for row in dashboard.sessions}
    low = pd.DataFrame(events.low_alliance_rows(f for view in dashboard.flags for f in view.flags))
    figures = {
        "trajectory": charts.trajectory(
            sessions=frames.sessions,
            levels=frames.levels,
            events=frames.events,
            session_dates=dates,
            low_alliance=low,
        ),
        "deviations": charts.deviations(sessions=frames.sessions, events=frames.events, k=frames.k),
        "subscales": charts.subscales(sessions=frames.sessions, events=frames.events, low_alliance=low),
    }
    courses = dashboard.outcomes.courses
    if courses:
        totals = frames.sessions[frames.sessions["scale"] == "total"][["session", "score"]].dropna()
        ruptures = frames.events[(frames.events["kind"] == "rupture") & (frames.events["scale"] == "total")]
        level = dashboard.levels.get("total", {}).get("level")
        figures["symptoms"] = charts.symptoms(
            scores=pd.DataFrame(
                [(n, code, v) for code, c in courses.items() for n, v in c.scores],
                columns=["session", "measure", "score"],
            ),
            measures={code: c.spec for code, c in courses.items()},
            expected=pd.DataFrame(
                [(n, code, e, u) for code, c in courses.items() for n, e, u in c.expected],
                columns=["session", "measure", "expected", "upper"],
            ),
            alliance=totals,
            level=float(level) if level is not None else None,
            ruptures=sorted({int(s) for s in ruptures["session"]}),
            session_dates=dates,
        )
    if not dashboard.therapist_scores.empty:
        # Each scale by session (total and subscales), so the table gives the difference per scale.
        wide = frames.sessions.pivot_table(index="session", columns="scale", values="score", observed=True)
        figures["raters"] = charts.raters(
            patient=wide.reset_index().rename_axis(columns=None), therapist=dashboard.therapist_scores
        )
    # Alliance and symptoms on one timeline comes first: it is the page's question in one picture.
    return {"symptoms": figures.pop("symptoms"), **figures} if "symptoms" in figures else figures


@login_required
@require_POST
def flag_acknowledge(request: AuthenticatedRequest, code: str) -> HttpResponse:
    flag = flag_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=flag.episode.patient, action="acknowledge flags")
    try:
        flags_services.flag_acknowledge(
            flag=flag,
            user=request.user,
            acknowledgement=request.POST.get("acknowledgement", ""),
            note=request.POST.get("note", ""),
        )
        messages.success(request, "Noted. The flag stays on this page and no longer counts on your caseload.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(f"{reverse('monitoring:patient', args=[flag.episode.patient.code])}#flag-{flag.code}")


@login_required
@require_POST
def flag_unacknowledge(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """Undo an acknowledgement (audited): the event is open again."""
    flag = flag_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=flag.episode.patient, action="undo acknowledgements")
    if flags_services.flag_unacknowledge(flag=flag, user=request.user):
        messages.success(request, "Acknowledgement undone. The flag is open again.")
    return redirect(f"{reverse('monitoring:patient', args=[flag.episode.patient.code])}#flag-{flag.code}")


@login_required
@require_POST
def safety_follow_up(request: AuthenticatedRequest, code: uuid.UUID) -> HttpResponse:
    """Record what was done about a safety alert (any clinician who may see the patient)."""
    alert = get_object_or_404(
        SafetyAlert.objects.select_related("episode__patient"),
        code=code,
        episode__patient__in=patients_visible_to(user=request.user),
    )
    require_may_change(user=request.user, patient=alert.episode.patient, action="record a follow-up")
    try:
        safety.safety_follow_up(
            alert=alert,
            user=request.user,
            follow_up=request.POST.get("follow_up", ""),
            note=request.POST.get("note", "")[:4000],
        )
        messages.success(
            request, "Follow-up recorded. The safety alert has left the caseload; it stays on this page."
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(f"{reverse('monitoring:patient', args=[alert.episode.patient.code])}#safety")


@login_required
@require_POST
def session_add(request: AuthenticatedRequest, code: str) -> HttpResponse:
    patient = patient_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=patient, action="add sessions")
    try:
        when = date.fromisoformat(request.POST.get("date", ""))
    except ValueError:
        messages.error(request, "Please give the session date as a date.")
        return redirect("monitoring:patient", code=patient.code)
    try:
        session, _ = sessions.session_add(
            patient=patient, on=when, status=Session.Status.SCHEDULED, user=request.user
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("monitoring:patient", code=patient.code)
    messages.success(request, f"Session {session.number} added.")
    return redirect("monitoring:session", code=session.code)


@login_required
@require_POST
def form_send(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """Send form (and "Form not in"): the session made if needed, marked held, its link sent by
    the patient's channel, or shown on the session page when there is no contact on file."""
    patient = patient_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=patient, action="send forms")
    target = _uuid_or_none(request.POST.get("session", ""))
    session = session_get_for_user(user=request.user, code=target) if target else None
    if session is not None and session.episode.patient_id != patient.pk:
        raise Http404
    try:
        sent = sessions.form_send(patient=patient, user=request.user, session=session)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("monitoring:patient", code=patient.code)
    where = f"Session {sent.session.number}" + (
        " added for today"
        if sent.added
        else f" (booked for {sent.moved_from:%-d %b}) moved to today"
        if sent.moved_from
        else ""
    )
    if sent.channel:
        how = "email" if sent.channel == "email" else "text message"
        messages.success(
            request, f"{where}: the form link was sent by {how}. It contains no clinical information."
        )
    elif patient.form_channel == FormChannel.NONE:
        messages.success(
            request,
            f"{where}: {patient.label} answers in the clinic. Show the QR code below or hand over the "
            "tablet.",
        )
    elif sent.missing:
        messages.warning(
            request,
            f"{where}: there is no {sent.missing} on file for {patient.label}, so nothing was sent. "
            "Show the patient the QR code below or copy the link for them.",
        )
    else:
        messages.warning(
            request,
            f"{where}: there is no email address or mobile number on file for {patient.label}, so "
            "nothing was sent. Show the patient the QR code below or copy the link for them; add "
            "contact details on the patient's record to send links next time.",
        )
    return redirect("monitoring:session", code=sent.session.code)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    """A posted code as a UUID; None for anything else (a tampered form matches nothing)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode("utf-8").split("?>", 1)[-1]


def _session_context(request: AuthenticatedRequest, session: Session) -> dict[str, object]:
    # A form link is a credential (it answers as the patient): none for a read-only viewer.
    can_change = may_change(user=request.user, patient=session.episode.patient)
    usable = list(session.invitations.usable().order_by("-created_at")) if can_change else []
    invitation = next((i for i in usable if i.part == Invitation.Part.AFTER), None)
    before = next((i for i in usable if i.part == Invitation.Part.BEFORE), None)
    url = links.form_url(links.token_for_salt(invitation.salt)) if invitation else ""
    before_url = links.form_url(links.token_for_salt(before.salt)) if before else ""
    stored = list(session.responses.select_related("entered_by"))
    responses = {r.rater: r for r in stored if r.measure == "alliance"}
    patient = session.episode.patient
    clinic = patient.clinic
    symptoms = {r.measure: r for r in stored if r.measure != "alliance" and r.rater == Rater.PATIENT}
    return {
        "measures": [
            {"code": code, "name": instrument.translation("en").name, "response": symptoms.get(code)}
            for code, instrument in clinic_measures(clinic).items()
        ],
        "symptoms_before": clinic.outcome_timing == clinic.OutcomeTiming.BEFORE_SESSION,
        "before_invitation": before,
        "before_url": before_url,
        "before_qr": mark_safe(_qr_svg(before_url)) if before_url else "",  # noqa: S308 - generated by qrcode
        "session": session,
        "patient": patient,
        "invitation": invitation,
        "link_url": url,
        "qr_svg": mark_safe(_qr_svg(url)) if url else "",  # noqa: S308 - generated by qrcode, no user input
        "patient_response": responses.get(Rater.PATIENT),
        "therapist_response": responses.get(Rater.THERAPIST),
        "can_rate": may_rate_session(user=request.user, session=session),
        "can_change": can_change,
    }


@login_required
@never_cache
def session_detail(request: AuthenticatedRequest, code: str) -> HttpResponse:
    session = session_get_for_user(user=request.user, code=code)
    patient = session.episode.patient
    access_log(actor=request.user, instance=patient, what="session page", path=request.path)
    notes = patient_messages_read(user=request.user, patient=patient, sessions=[session], path=request.path)
    context = {**_session_context(request, session), "patient_messages": notes.get(session.pk, [])}
    return render(request, "care/session.html", context)


@login_required
@require_POST
def session_action(request: AuthenticatedRequest, code: str, action: str) -> HttpResponse:
    """The session page's buttons: mark held, new link, withdraw link, send link."""
    session = session_get_for_user(user=request.user, code=code)
    require_may_change(
        user=request.user, patient=session.episode.patient, action="change sessions and form links"
    )
    try:
        if action == "held":
            session_mark_held(session=session, user=request.user)
            messages.success(request, "Session marked as held. The form link is ready below.")
        elif action == "link":
            invitation_create(session=session, created_by=request.user)
            messages.success(
                request, "A new form link is ready; earlier links for this session no longer work."
            )
        elif action == "symptom-link":
            invitation_create(session=session, created_by=request.user, part=Invitation.Part.BEFORE)
            messages.success(
                request, "The symptom questions' link is ready; earlier ones for this session no longer work."
            )
        elif action in ("revoke", "email", "sms"):
            invitation_code = _uuid_or_none(request.POST.get("invitation", ""))
            invitation = (
                Invitation.objects.filter(session=session, code=invitation_code).first()
                if invitation_code
                else None
            )
            if invitation is None:
                raise ApplicationError("That link no longer exists; reload the page.")
            if action == "revoke":
                invitation_revoke(invitation=invitation)
                messages.success(request, "The link has been withdrawn. It no longer opens the form.")
            else:
                invitation_send(invitation=invitation, channel=action)
                messages.success(request, "The link has been sent. It contains no clinical information.")
        else:
            raise ApplicationError("Unknown action.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("monitoring:session", code=session.code)


@login_required
@recent_sign_in_required(allow_get=False)
def patient_report_pdf(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """The one-patient report as a PDF to file in the health record (audited)."""
    patient = patient_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=patient, action="export reports")
    rendered = export_services.patient_report_for_user(user=request.user, code=code)
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def patient_appointments(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """The patient page's "Appointments and form links": the channel form links go by and the
    recurring appointments (or none), saved together or not at all."""
    patient = patient_get_for_user(user=request.user, code=code)
    require_may_change(user=request.user, patient=patient, action="plan appointments")
    post = request.POST
    back = f"{reverse('monitoring:patient', args=[patient.code])}#appointments"
    try:
        when = _posted_time(post.get("time", ""))
        starts_on, ends_on = _posted_day(post.get("starts_on", "")), _posted_day(post.get("ends_on", ""))
        dates = [_posted_day(d) for d in re.split(r"[\s,;]+", post.get("dates", "")[:2000]) if d]
        repeat = post.get("repeat", "")
        with transaction.atomic():
            appointments.patient_channel_set(patient=patient, channel=post.get("channel", ""))
            if repeat:
                appointments.schedule_set(
                    patient=patient,
                    repeat=repeat,
                    time=when,
                    starts_on=starts_on,
                    ends_on=ends_on,
                    dates=[d for d in dates if d],
                    by=request.user,
                )
            else:
                appointments.schedule_stop(patient=patient)
    except ApplicationError as error:
        messages.error(request, f"Nothing was changed. {error.message}")
        return redirect(back)
    messages.success(
        request,
        "Saved. Each appointment's session is made and its form sent an hour after it starts."
        if repeat
        else "Saved. No recurring appointments: add sessions and send forms from this page.",
    )
    return redirect(back)


def _posted_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        raise ApplicationError(f"'{value[:20]}' is not a date; write it as YYYY-MM-DD.") from None


def _posted_time(value: str) -> dt_time | None:
    try:
        return dt_time.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        raise ApplicationError(f"'{value[:20]}' is not a time of day; write it as HH:MM.") from None
