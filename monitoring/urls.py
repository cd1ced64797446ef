"""Project URLs. The alliance app's own routes live under the ``monitoring`` namespace; patient
form links are /f/<token>/ (the token is the only thing in them).

Every view needs a signed-in user (LoginRequiredMiddleware) except the explicit allow-list
below: the patient form, the staff invitation link, the health check, the sign-in and
password-reset pages, and the API, which authenticates each request itself (a token or a
session) and answers 401 in JSON. tests/security/test_security.py compares this list with the URL conf.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, include, path

from monitoring.care import views
from monitoring.clinic_admin import views as admin_views
from monitoring.collection import views as form_views

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
        path(
            "clinic/<slug:slug>/patients/<uuid:code>/erase/",
            admin_views.patient_erase,
            name="admin-patient-erase",
        ),
        path("clinic/<slug:slug>/settings/", admin_views.clinic_settings, name="admin-settings"),
        path("clinic/<slug:slug>/audit/", admin_views.audit, name="admin-audit"),
        path("clinic/<slug:slug>/audit.csv", admin_views.audit_export, name="admin-audit-export"),
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

# allauth's pages that a signed-out visitor needs: sign in (with its two-factor step), sign out,
# and the password reset by email. The rest of /accounts/ (two-factor set-up, password change,
# re-authentication) needs a signed-in user.
ACCOUNT_PAGES_ANONYMOUS = {
    "account_login",
    "account_logout",
    "account_signup",  # says that sign-up is closed: staff join by invitation
    "account_inactive",
    # allauth opens these itself: email confirmation links and a sign-in code under way.
    "account_email_verification_sent",
    "account_confirm_email",
    "account_confirm_login_code",
    "account_reset_password",
    "account_reset_password_done",
    "account_reset_password_from_key",
    "account_reset_password_from_key_done",
    "mfa_authenticate",
}


def _allow_anonymous(patterns: Iterable[URLPattern | URLResolver], names: set[str] | None = None) -> None:
    """Mark views as reachable without signing in: every view in ``patterns``, or those named."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _allow_anonymous(pattern.url_patterns, names)
        elif names is None or pattern.name in names:
            login_not_required(pattern.callback)


# The Django admin signs in through allauth too (password and authenticator code).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
accounts = include("allauth.urls")
api = include("monitoring.api.urls")
_allow_anonymous(import_module("allauth.urls").urlpatterns, ACCOUNT_PAGES_ANONYMOUS)
_allow_anonymous(import_module("monitoring.api.urls").urlpatterns)

urlpatterns = [
    path("", include(app_urls)),
    path("favicon.ico", views.favicon),
    path("healthz", views.healthz, name="healthz"),
    path("api/", api),
    path("accounts/", accounts),
    path("django-admin/", admin.site.urls),
]
