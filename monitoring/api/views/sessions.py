"""Sessions (appointments), their form links, and the responses stored for them (also as FHIR)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from clinics.errors import ApplicationError
from clinics.models import Session
from clinics.permissions import may_change
from monitoring.analytics.outcomes import score_measure
from monitoring.api import serializers as s
from monitoring.api.auth import (
    patients_for,
    user_of,
)
from monitoring.api.idempotency import IDEMPOTENCY_KEY, idempotent
from monitoring.api.views.base import (
    CONFLICT,
    FHIR_JSON,
    RATER,
    ApiView,
    FhirApiView,
    audit_access,
    audit_list,
    patient_for,
    session_for,
    valid_input,
)
from monitoring.collection import links
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import response_enter
from monitoring.collection.sessions import session_add, session_push, session_update
from monitoring.exports import fhir
from monitoring.instruments.measures import measure_spec
from monitoring.instruments.scores import response_scores
from monitoring.models import Invitation, Rater
from monitoring.models import Response as FormResponse


def _with_responses(sessions: QuerySet[Session]) -> QuerySet[Session]:
    return sessions.annotate(
        patient_response=Exists(
            FormResponse.objects.filter(session=OuterRef("pk"), rater=Rater.PATIENT, measure="alliance")
        ),
        therapist_response=Exists(FormResponse.objects.filter(session=OuterRef("pk"), rater=Rater.THERAPIST)),
    ).select_related("episode__patient__clinic")


def _with_measures(sessions: Iterable[Session]) -> list[Session]:
    """Each session with ``measures_in``: whether the patient's answers of each measure are in,
    for "alliance", the clinic's symptom measures and any other measure answered (one query)."""
    rows = list(sessions)
    answered: dict[int, set[str]] = {}
    for session_id, measure in FormResponse.objects.filter(
        session__in=[r.pk for r in rows], rater=Rater.PATIENT
    ).values_list("session_id", "measure"):
        answered.setdefault(session_id, set()).add(measure)
    for row in rows:
        done = answered.get(row.pk, set())
        asked = ["alliance", *row.episode.patient.clinic.outcome_measures, *sorted(done - {"alliance"})]
        row.measures_in = {measure: measure in done for measure in dict.fromkeys(asked)}  # type: ignore[attr-defined]
    return rows


def _form_link(invitation: Invitation | None, token: str | None = None) -> dict[str, Any] | None:
    if invitation is None:
        return None
    return {
        "url": links.form_url(token or links.token_for_salt(invitation.salt)),
        "expires_at": invitation.expires_at,
    }


def _session_out(
    session: Session, link: tuple[Invitation, str] | None = None, *, with_link: bool = True
) -> dict[str, Any]:
    """One session with its open form link: the one just made, else the newest usable one (as the
    session page shows it). ``with_link=False``: none (a link answers as the patient; a
    supervisor, read-only, gets none)."""
    fresh = _with_measures(_with_responses(Session.objects.filter(pk=session.pk)))[0]
    if not with_link:
        form_link = None
    elif link is None:
        current = session.invitations.usable().order_by("-created_at").first()
        form_link = _form_link(current)
    else:
        form_link = _form_link(*link)
    return {**s.SessionOutput(fresh).data, "form_link": form_link and s.FormLinkOutput(form_link).data}


def _form_link_now(body: dict[str, Any]) -> Any:
    """A replayed session create's form link: the session's open link as it is now (the link is
    never stored with the answer)."""
    session = Session.objects.get(code=body["code"])
    link = _form_link(session.invitations.usable().order_by("-created_at").first())
    return link and s.FormLinkOutput(link).data


def _responses() -> QuerySet[FormResponse]:
    return FormResponse.objects.select_related(
        "session__episode__patient__clinic", "instrument", "entered_by"
    ).prefetch_related("answers__item")


def _response(request: Request, code: object, rater: str) -> FormResponse:
    """One session's response by ``rater``: the alliance form unless ``?measure=`` names a symptom
    measure (a session may hold one response per rater and measure)."""
    session = session_for(request, code)
    measure = valid_input(s.ResponseQuery, request.query_params.dict())["measure"]
    return get_object_or_404(_responses(), session=session, rater=rater, measure=measure)


class PatientSessionsApi(ApiView):
    @extend_schema(
        operation_id="sessions_create",
        request=s.SessionCreateInput,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.SessionOutput, 200: s.SessionOutput, 409: CONFLICT},
        tags=["sessions"],
    )
    @idempotent(withhold="form_link", restore=_form_link_now)
    def post(self, request: Request, code: str) -> Response:
        """Add the next session of the patient's open episode, e.g. an appointment from the health
        record. With status "held" the patient's form link is created and returned. With
        `external_id` (the appointment's id in the health record) a retried push answers 200 with
        the session it made the first time instead of adding another; the same id for another
        patient of the clinic is a 409."""
        patient = patient_for(request, code, change="add sessions")
        data = valid_input(s.SessionCreateInput, request.data)
        user = user_of(request)
        if data.get("external_id"):
            session, link, created = session_push(
                patient=patient,
                on=data["date"],
                status=data["status"],
                user=user,
                external_id=data["external_id"],
            )
        else:
            (session, link), created = (
                session_add(patient=patient, on=data["date"], status=data["status"], user=user),
                True,
            )
        return Response(
            _session_out(session, link), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class SessionListApi(ApiView):
    @extend_schema(
        operation_id="sessions_list",
        parameters=[s.SessionFilter],
        responses=s.SessionOutput(many=True),
        tags=["sessions"],
    )
    def get(self, request: Request) -> Response:
        """Sessions of the patients you may see, newest first (form links only on one session's read)."""
        filters = valid_input(s.SessionFilter, request.query_params.dict())
        sessions = _with_responses(Session.objects.filter(episode__patient__in=patients_for(request)))
        for name, lookup in (
            ("patient", "episode__patient__code"),
            ("episode", "episode__code"),
            ("status", "status"),
            ("date_from", "date__gte"),
            ("date_to", "date__lte"),
        ):
            if filters.get(name) is not None:
                sessions = sessions.filter(**{lookup: filters[name]})
        rows = _with_measures(self.page(request, sessions.order_by("-date", "-number", "pk")))
        audit_list(request, what="session list", patients=[r.episode.patient for r in rows])
        return self.paged(s.SessionOutput(rows, many=True).data)


class SessionDetailApi(ApiView):
    @extend_schema(operation_id="sessions_retrieve", responses=s.SessionOutput, tags=["sessions"])
    def get(self, request: Request, code: str) -> Response:
        """One session, with its open form link if there is one (never for a supervisor, who
        sees the session read-only: a link answers as the patient)."""
        session = session_for(request, code)
        audit_access(
            request, instance=session.episode.patient, what="session", extra={"session": str(session.code)}
        )
        return Response(
            _session_out(
                session, with_link=may_change(user=user_of(request), patient=session.episode.patient)
            )
        )

    @extend_schema(
        operation_id="sessions_update",
        request=s.SessionUpdateInput,
        responses={200: s.SessionOutput, 409: CONFLICT},
        tags=["sessions"],
    )
    def patch(self, request: Request, code: str) -> Response:
        """Move an appointment or change its status. Becoming "held" creates the form link (a
        session held already keeps its link); cancelling withdraws open links, and is refused
        (409) once answers are in."""
        session = session_for(request, code, change="change sessions")
        data = valid_input(s.SessionUpdateInput, request.data)
        link = session_update(
            session=session, user=user_of(request), on=data.get("date"), status=data.get("status")
        )
        return Response(_session_out(session, link))


class SessionLinkApi(ApiView):
    @extend_schema(
        operation_id="sessions_link_create",
        request=None,
        responses={201: s.FormLinkOutput, 409: CONFLICT},
        tags=["sessions"],
    )
    def post(self, request: Request, code: str) -> Response:
        """A fresh one-time form link for a held session; earlier links stop working. 409 once the
        patient's answers are in."""
        session = session_for(request, code, change="create form links")
        invitation, token = invitation_create(session=session, created_by=user_of(request))
        return Response(s.FormLinkOutput(_form_link(invitation, token)).data, status=status.HTTP_201_CREATED)


class SessionResponsesApi(ApiView):
    @extend_schema(
        operation_id="responses_create",
        request=s.ResponseInput,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.ResponseDetailOutput, 409: CONFLICT},
        tags=["responses"],
    )
    @idempotent()
    def post(self, request: Request, code: str) -> Response:
        """Enter a completed form on the patient's behalf (recorded as staff entry, with you as
        the one who entered it), or your own therapist rating. ``measure`` says which form: the
        alliance (default; the session becomes held and the episode is analysed) or a symptom
        measure such as "phq9" (a risk answer raises a safety alert at once). Every item must be
        answered. 409 if this rater's answers of this measure are in."""
        session = session_for(request, code, change="enter answers")
        data = valid_input(s.ResponseInput, request.data)
        try:
            response = response_enter(
                session=session,
                rater=data["rater"],
                answers={a["item"]: a["value"] for a in data["answers"]},
                user=user_of(request),
                measure=data["measure"],
            )
        except ApplicationError as error:
            if error.problems:  # answers outside the instrument's items or scale, or missing
                raise exceptions.ValidationError({"answers": error.problems}) from error
            raise
        return Response(_response_detail(_responses().get(pk=response.pk)), status=status.HTTP_201_CREATED)


def _response_detail(response: FormResponse) -> dict[str, Any]:
    if response.measure == "alliance":
        scores = [{**score, "band": ""} for score in response_scores(response=response)]
    else:  # a symptom measure: its total (prorated or missing by its own rule) and severity band
        spec = measure_spec(response.instrument)
        given = {a.item.number: a.value for a in response.answers.all()}
        numbers = sorted(i.number for i in response.instrument.items.all())
        total = score_measure([given.get(n) for n in numbers], spec)
        known = total == total
        scores = [
            {
                "scale": "total",
                "name": spec.name,
                "score": total if known else None,
                "band": spec.band(total) if known else "",
            }
        ]
    return {**s.ResponseOutput(response).data, "scores": s.ScoreOutput(scores, many=True).data}


class ResponseDetailApi(ApiView):
    @extend_schema(
        operation_id="responses_retrieve",
        parameters=[RATER, s.ResponseQuery],
        responses=s.ResponseDetailOutput,
        tags=["responses"],
    )
    def get(self, request: Request, code: str, rater: str) -> Response:
        """One session's answers by the patient or the therapist, with item answers and scores: the
        alliance form, or with ``?measure=phq9`` (etc.) the patient's symptom measure."""
        response = _response(request, code, rater)
        audit_access(
            request,
            instance=response.session.episode.patient,
            what=f"{rater} response",
            extra={"session": str(response.session.code), "measure": response.measure},
        )
        return Response(_response_detail(response))


class ResponseFhirApi(FhirApiView):
    @extend_schema(
        operation_id="responses_fhir",
        parameters=[RATER, s.ResponseQuery],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        tags=["fhir"],
    )
    def get(self, request: Request, code: str, rater: str) -> HttpResponse:
        """The response as a FHIR R4 QuestionnaireResponse (the same resource as in the FHIR
        bundle export: same id, identifiers and coding; a symptom measure with its LOINC codes and
        total). ``?measure=`` as for the JSON read."""
        response = _response(request, code, rater)
        patient = response.session.episode.patient
        audit_access(
            request,
            instance=patient,
            what=f"{rater} response (FHIR)",
            extra={"session": str(response.session.code), "measure": response.measure},
        )
        return HttpResponse(fhir.response_resource(response=response), content_type=FHIR_JSON)


class ResponseListApi(ApiView):
    @extend_schema(
        operation_id="responses_list",
        parameters=[s.ResponseFilter],
        responses=s.ResponseOutput(many=True),
        tags=["responses"],
    )
    def get(self, request: Request) -> Response:
        """Completed forms of the patients you may see (alliance and symptom measures; filter with
        ``measure``), newest first, with their item answers."""
        filters = valid_input(s.ResponseFilter, request.query_params.dict())
        responses = _responses().filter(session__episode__patient__in=patients_for(request))
        for name, lookup in (
            ("patient", "session__episode__patient__code"),
            ("session", "session__code"),
            ("rater", "rater"),
            ("measure", "measure"),
            ("since", "submitted_at__gte"),
        ):
            if filters.get(name) is not None:
                responses = responses.filter(**{lookup: filters[name]})
        rows = self.page(request, responses.order_by("-submitted_at", "-pk"))
        audit_list(request, what="response list", patients=[r.session.episode.patient for r in rows])
        return self.paged(s.ResponseOutput(rows, many=True).data)
