"""URLs of the REST API (included under /api/): v1 operations, the OpenAPI schema and its docs.

Objects are named by their opaque codes; an instrument by its public code and version. Anything
else under /api/ is the API's JSON 404, not the site's HTML page.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from monitoring.api.views import base, exports, flags, identity, instruments, patients, safety, sessions

app_name = "api"

#: Up to 9 digits: a longer number is no version and must not reach the database as an integer.
VERSION = r"(?P<version>[0-9]{1,9})"
#: Django's own UUID pattern (a looser one would let "----" reach the database as a UUID).
UUID = r"(?P<code>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"

v1 = [
    path("me/", identity.MeApi.as_view(), name="me"),
    path("tokens/", identity.TokenListApi.as_view(), name="tokens"),
    path("tokens/<uuid:code>/", identity.TokenDetailApi.as_view(), name="token"),
    path("staff/", identity.StaffListApi.as_view(), name="staff"),
    path("patients/", patients.PatientListApi.as_view(), name="patients"),
    path("patients/<uuid:code>/", patients.PatientDetailApi.as_view(), name="patient"),
    path("patients/<uuid:code>/analysis/", patients.PatientAnalysisApi.as_view(), name="patient-analysis"),
    path("patients/<uuid:code>/episodes/", patients.PatientEpisodesApi.as_view(), name="patient-episodes"),
    path("patients/<uuid:code>/sessions/", sessions.PatientSessionsApi.as_view(), name="patient-sessions"),
    path("episodes/<uuid:code>/", patients.EpisodeDetailApi.as_view(), name="episode"),
    path("episodes/<uuid:code>/close/", patients.EpisodeCloseApi.as_view(), name="episode-close"),
    path("sessions/", sessions.SessionListApi.as_view(), name="sessions"),
    path("sessions/<uuid:code>/", sessions.SessionDetailApi.as_view(), name="session"),
    path("sessions/<uuid:code>/link/", sessions.SessionLinkApi.as_view(), name="session-link"),
    path("sessions/<uuid:code>/responses/", sessions.SessionResponsesApi.as_view(), name="session-responses"),
    re_path(
        rf"^sessions/{UUID}/responses/(?P<rater>patient|therapist)/$",
        sessions.ResponseDetailApi.as_view(),
        name="response",
    ),
    re_path(
        rf"^sessions/{UUID}/responses/(?P<rater>patient|therapist)/fhir/$",
        sessions.ResponseFhirApi.as_view(),
        name="response-fhir",
    ),
    path("responses/", sessions.ResponseListApi.as_view(), name="responses"),
    path("caseload/", flags.CaseloadApi.as_view(), name="caseload"),
    path("flags/", flags.FlagListApi.as_view(), name="flags"),
    path("flags/<uuid:code>/", flags.FlagDetailApi.as_view(), name="flag"),
    path("flags/<uuid:code>/acknowledge/", flags.FlagAcknowledgeApi.as_view(), name="flag-acknowledge"),
    path("flags/<uuid:code>/unacknowledge/", flags.FlagUnacknowledgeApi.as_view(), name="flag-unacknowledge"),
    path("safety-alerts/", safety.SafetyAlertListApi.as_view(), name="safety-alerts"),
    path("safety-alerts/<uuid:code>/", safety.SafetyAlertDetailApi.as_view(), name="safety-alert"),
    path(
        "safety-alerts/<uuid:code>/follow-up/",
        safety.SafetyFollowUpApi.as_view(),
        name="safety-alert-follow-up",
    ),
    path("instruments/", instruments.InstrumentListApi.as_view(), name="instruments"),
    re_path(
        rf"^instruments/(?P<code>[-a-z0-9]+)/{VERSION}/$",
        instruments.InstrumentDetailApi.as_view(),
        name="instrument",
    ),
    re_path(
        rf"^instruments/(?P<code>[-a-z0-9]+)/{VERSION}/fhir/$",
        instruments.QuestionnaireApi.as_view(),
        name="instrument-fhir",
    ),
    # The FHIR base of this API: a canonical {FHIR_CANONICAL_BASE}/CodeSystem/{id} is read at
    # /api/v1/fhir/CodeSystem/{id}, without a trailing slash as FHIR clients write it. Any id
    # reaches the view, so that an unknown one is answered as FHIR (an OperationOutcome).
    re_path(
        r"^fhir/CodeSystem/(?P<id>[^/]+)$",
        instruments.CodeSystemApi.as_view(),
        name="codesystem",
    ),
    path("exports/reports/", exports.ReportListApi.as_view(), name="reports"),
    path("exports/", exports.ExportListApi.as_view(), name="exports"),
    path("exports/<uuid:code>/", exports.ExportDetailApi.as_view(), name="export"),
    path("exports/<uuid:code>/download/", exports.ExportDownloadApi.as_view(), name="export-download"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file of its own: our CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^[\s\S]*$", base.NotFoundApi.as_view(), name="not-found"),  # newlines included
]
