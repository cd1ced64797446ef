"""Project URLs. The alliance app's own routes live under the ``monitoring`` namespace; patient
form links are /f/<token>/ (the token is the only thing in them)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from monitoring import admin_views, form_views, views

app_urls = (
    [
        path("", views.caseload, name="caseload"),
        path("notifications/read/", views.notifications_read, name="notifications-read"),
        path("patients/<uuid:code>/", views.patient_detail, name="patient"),
        path("patients/<uuid:code>/sessions/", views.session_add, name="session-add"),
        path("sessions/<uuid:code>/", views.session_detail, name="session"),
        path("sessions/<uuid:code>/enter/<str:rater>/", views.response_enter, name="response-enter"),
        path("sessions/<uuid:code>/<str:action>/", views.session_action, name="session-action"),
        path("flags/<uuid:code>/acknowledge/", views.flag_acknowledge, name="flag-acknowledge"),
        path("kiosk/", views.kiosk, name="kiosk"),
        path("account/api-tokens/", views.api_tokens, name="api-tokens"),
        path("kiosk/<uuid:code>/", views.kiosk_start, name="kiosk-start"),
        path("clinic/<slug:slug>/", admin_views.admin_home, name="admin"),
        path("clinic/<slug:slug>/staff/", admin_views.staff, name="admin-staff"),
        path(
            "clinic/<slug:slug>/staff/<uuid:code>/<str:action>/",
            admin_views.staff_action,
            name="admin-staff-action",
        ),
        path(
            "clinic/<slug:slug>/invitations/<uuid:code>/revoke/",
            admin_views.staff_invitation_revoke,
            name="admin-invitation-revoke",
        ),
        path("clinic/<slug:slug>/patients/", admin_views.patients, name="admin-patients"),
        path("clinic/<slug:slug>/patients/<uuid:code>/", admin_views.patient, name="admin-patient"),
        path("clinic/<slug:slug>/settings/", admin_views.clinic_settings, name="admin-settings"),
        path("clinic/<slug:slug>/report/", admin_views.report, name="admin-report"),
        path("clinic/<slug:slug>/exports/", admin_views.exports, name="admin-exports"),
        path("exports/<uuid:code>/download/", admin_views.export_download, name="export-download"),
        path("patients/<uuid:code>/report.pdf", views.patient_report_pdf, name="patient-report-pdf"),
        path("join/<str:token>/", admin_views.join, name="join"),
        path("f/<str:token>/", form_views.form, name="form"),
        path("f/<str:token>/done/", form_views.form_done, name="form-done"),
    ],
    "monitoring",
)

urlpatterns = [
    path("", include(app_urls)),
    path("favicon.ico", views.favicon),
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("monitoring.api_urls")),
    path("accounts/", include("allauth.urls")),
    path("django-admin/", admin.site.urls),
]
