"""The clinic admin area (404 for anyone but the clinic's active admins) and the staff
invitation link."""

from __future__ import annotations

from django.urls import path

from monitoring.clinic_admin.views import audit, clinic_settings, exports, patients, report, staff

urlpatterns = [
    path("clinic/<slug:slug>/", staff.admin_home, name="admin"),
    path("clinic/<slug:slug>/staff/", staff.staff, name="admin-staff"),
    path("clinic/<slug:slug>/staff/<uuid:code>/<str:action>/", staff.staff_action, name="admin-staff-action"),
    path(
        "clinic/<slug:slug>/invitations/<uuid:code>/revoke/",
        staff.staff_invitation_revoke,
        name="admin-invitation-revoke",
    ),
    path("join/<str:token>/", staff.join, name="join"),
    path("clinic/<slug:slug>/patients/", patients.patients, name="admin-patients"),
    path("clinic/<slug:slug>/patients/<uuid:code>/", patients.patient, name="admin-patient"),
    path(
        "clinic/<slug:slug>/patients/<uuid:code>/erase/", patients.patient_erase, name="admin-patient-erase"
    ),
    path("clinic/<slug:slug>/settings/", clinic_settings.clinic_settings, name="admin-settings"),
    path("clinic/<slug:slug>/audit/", audit.audit, name="admin-audit"),
    path("clinic/<slug:slug>/audit.csv", audit.audit_export, name="admin-audit-export"),
    path("clinic/<slug:slug>/report/", report.report, name="admin-report"),
    path("clinic/<slug:slug>/exports/", exports.exports, name="admin-exports"),
    path("clinic/<slug:slug>/exports/recent/", exports.exports_recent, name="admin-exports-recent"),
    path("exports/<uuid:code>/download/", exports.export_download, name="export-download"),
]
