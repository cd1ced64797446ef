"""The therapist's pages: caseload, patient, session, flags, the one-patient PDF."""

from __future__ import annotations

from django.urls import path

from monitoring.care import views

urlpatterns = [
    path("", views.caseload, name="caseload"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("patients/<uuid:code>/", views.patient_detail, name="patient"),
    path("patients/<uuid:code>/sessions/", views.session_add, name="session-add"),
    path("patients/<uuid:code>/send-form/", views.form_send, name="form-send"),
    path("patients/<uuid:code>/appointments/", views.patient_appointments, name="patient-appointments"),
    path("patients/<uuid:code>/review/", views.patient_review, name="patient-review"),
    path("patients/<uuid:code>/report.pdf", views.patient_report_pdf, name="patient-report-pdf"),
    path("sessions/<uuid:code>/", views.session_detail, name="session"),
    path("flags/<uuid:code>/acknowledge/", views.flag_acknowledge, name="flag-acknowledge"),
    path("flags/<uuid:code>/unacknowledge/", views.flag_unacknowledge, name="flag-unacknowledge"),
    path("safety/<uuid:code>/follow-up/", views.safety_follow_up, name="safety-follow-up"),
]
# The session page's buttons come last: "<action>" would otherwise match "enter".
action_urlpatterns = [
    path("sessions/<uuid:code>/<str:action>/", views.session_action, name="session-action"),
]
