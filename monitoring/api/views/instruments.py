"""The questionnaires loaded, and each as a FHIR Questionnaire."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.questionnaire import Questionnaire
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api import serializers as s
from monitoring.api.views.base import FHIR_JSON, ApiView, FhirApiView, valid_input
from monitoring.exports import fhir
from monitoring.models import Instrument


def _instruments() -> QuerySet[Instrument]:
    return Instrument.objects.prefetch_related("items", "translations").order_by("code", "-version")


def _instrument_out(instrument: Instrument) -> dict[str, Any]:
    return {
        "code": instrument.code,
        "version": instrument.version,
        "rater": instrument.rater,
        "scale_min": instrument.scale_min,
        "scale_max": instrument.scale_max,
        "subscales": list(instrument.subscales),
        "languages": sorted(t.language for t in instrument.translations.all()),
        "items": sorted(instrument.items.all(), key=lambda i: i.number),
    }


class InstrumentListApi(ApiView):
    @extend_schema(
        operation_id="instruments_list", responses=s.InstrumentOutput(many=True), tags=["instruments"]
    )
    def get(self, request: Request) -> Response:
        """The questionnaires loaded, every version (answers point at the version they used)."""
        rows = self.page(request, _instruments())
        return self.paged(s.InstrumentOutput([_instrument_out(i) for i in rows], many=True).data)


class InstrumentDetailApi(ApiView):
    @extend_schema(operation_id="instruments_retrieve", responses=s.InstrumentOutput, tags=["instruments"])
    def get(self, request: Request, code: str, version: str) -> Response:
        """One instrument version: its scale, subscales and items."""
        instrument = get_object_or_404(_instruments(), code=code, version=version)
        return Response(s.InstrumentOutput(_instrument_out(instrument)).data)


class QuestionnaireApi(FhirApiView):
    @extend_schema(
        operation_id="instruments_fhir",
        parameters=[s.LanguageQuery],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        tags=["fhir"],
    )
    def get(self, request: Request, code: str, version: str) -> HttpResponse:
        """The instrument as a FHIR R4 Questionnaire (as in the FHIR bundle export)."""
        language = valid_input(s.LanguageQuery, request.query_params.dict())["language"]
        instrument = get_object_or_404(_instruments(), code=code, version=version)
        resource = fhir._validated(
            Questionnaire, fhir.questionnaire_resource(instrument=instrument, language=language)
        )
        return HttpResponse(resource, content_type=FHIR_JSON)


class CodeSystemApi(FhirApiView):
    @extend_schema(
        operation_id="codesystems_fhir",
        parameters=[s.CodeSystemQuery],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
        tags=["fhir"],
    )
    def get(self, request: Request, id: str) -> HttpResponse:
        """One of Bordin's own code systems as a FHIR R4 CodeSystem (the same resource the FHIR
        bundle export carries): `{instrument}-answers` (an answer scale not coded by LOINC) or
        `{instrument}-subscales`. Its canonical url is `{FHIR_CANONICAL_BASE}/CodeSystem/{id}`, so
        a client resolves a code system of an exported bundle by replacing the canonical base with
        this API's FHIR base, `/api/v1/fhir`."""
        query = valid_input(s.CodeSystemQuery, request.query_params.dict())
        found = fhir.codesystem_find(id=id, version=query.get("version"), language=query["language"])
        if found is None:
            raise Http404("There is no such code system.")
        return HttpResponse(fhir._validated(CodeSystem, found), content_type=FHIR_JSON)
