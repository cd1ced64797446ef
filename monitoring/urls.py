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

from monitoring import views
from monitoring.care import urls as care_urls
from monitoring.clinic_admin import urls as clinic_admin_urls
from monitoring.collection import urls as collection_urls
from monitoring.security import urls as security_urls
from monitoring.team import urls as team_urls

# Each part declares its own routes; together they are the ``monitoring`` namespace.
app_urls = (
    [
        *care_urls.urlpatterns,
        *collection_urls.urlpatterns,
        *clinic_admin_urls.urlpatterns,
        *security_urls.urlpatterns,
        *team_urls.urlpatterns,
        *care_urls.action_urlpatterns,
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
# allauth adds a "your sessions" page (/accounts/sessions/) once allauth.usersessions is installed;
# we install that app only for its index of each user's sessions, so its page stays unrouted.
account_urlpatterns = [p for p in import_module("allauth.urls").urlpatterns if str(p.pattern) != "sessions/"]
accounts = include(account_urlpatterns)
api = include("monitoring.api.urls")
_allow_anonymous(account_urlpatterns, ACCOUNT_PAGES_ANONYMOUS)
_allow_anonymous(import_module("monitoring.api.urls").urlpatterns)

# Errors Django answers itself: JSON under /api/, the usual pages elsewhere (monitoring.views).
handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.page_not_found
handler500 = views.server_error

urlpatterns = [
    path("", include(app_urls)),
    path("favicon.ico", views.favicon),
    path("healthz", views.healthz, name="healthz"),
    path("api/", api),
    path("accounts/", accounts),
    path("django-admin/", admin.site.urls),
]
