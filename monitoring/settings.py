"""Bordin settings: one file, driven by environment variables.

SQLite is the zero-setup default; ``DATABASE_URL`` switches to PostgreSQL. Every variable is
listed in docs/operations.md. Production is ``DEBUG`` off (the default) with ``SECRET_KEY`` and
``ALLOWED_HOSTS`` set; ``manage.py check --deploy`` is clean with the variables documented there.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if not value else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
TESTING = env_bool("BORDIN_TESTING")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off (see docs/operations.md).")
    if TESTING:
        SECRET_KEY = "test-" + secrets.token_urlsafe(40)
    else:
        # Development only: a key kept in var/ so that sign-ins and patient links survive a restart.
        _key_file = BASE_DIR / "var" / "dev-secret-key"
        if not _key_file.exists():
            _key_file.parent.mkdir(parents=True, exist_ok=True)
            _key_file.write_text("dev-" + secrets.token_urlsafe(40))
        SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if (DEBUG or TESTING) else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
#: Canonical base of Bordin's FHIR code systems and questionnaires: a fixed name, not this
#: deployment's address, so that a code means the same in every clinic's records (docs/exports.md).
FHIR_CANONICAL_BASE = env("FHIR_CANONICAL_BASE", "https://bordin.app/fhir").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Only for its index of each user's sessions (clinics.services.user_sessions_end); its
    # "your sessions" page is not routed (monitoring/urls.py).
    "allauth.usersessions",
    "axes",
    "auditlog",
    "clinics",
    "monitoring",
]

MIDDLEWARE = [
    # First: the client's address behind the trusted proxies (TRUSTED_PROXIES), for all below.
    "monitoring.security.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "monitoring.security.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a signed-in user unless it is on the allow-list in monitoring/urls.py.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "monitoring.security.middleware.HtmxRedirectMiddleware",
    # Before the idle timeout, which gives a session without a sign-in time the present one.
    "monitoring.security.middleware.ClinicSignOutMiddleware",
    "monitoring.security.middleware.IdleTimeoutMiddleware",
    "monitoring.security.middleware.MfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last, so that a lockout response is produced after authentication has been attempted.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "monitoring.urls"
# The largest request body Django reads for a page (a form; files are not counted): the largest
# real one is a few KB. Over it, a page answers 400 and the API 413 (too_large). The API's own
# JSON limit is smaller (monitoring.api.auth.MAX_BODY_BYTES). Also bound it at the proxy.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
WSGI_APPLICATION = "monitoring.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "monitoring.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'bordin.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the form be submitted while a report is being read; IMMEDIATE avoids
    # "database is locked" upgrades inside write transactions.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "monitoring:caseload"
LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ALLOW_SIGNUPS = False  # staff join by invitation only
ACCOUNT_ADAPTER = "clinics.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
# Exports and staff changes ask for the password (or an authenticator code) again when the last
# re-authentication is older than this (allauth's reauthentication flow).
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("REAUTHENTICATION_SECONDS", 300)
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False  # this session stays; every other one ends
# API tokens always expire: after API_TOKEN_DEFAULT_DAYS unless their creator chooses a date, and
# never later than API_TOKEN_MAX_DAYS after creation (monitoring.security.tokens).
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
API_TOKEN_DEFAULT_DAYS = min(env_int("API_TOKEN_DEFAULT_DAYS", 90), API_TOKEN_MAX_DAYS)
ACCOUNT_PASSWORD_MIN_LENGTH = 12
# Two-factor sign-in is required for staff (monitoring.security.middleware.MfaRequiredMiddleware).
# Failed codes are rate-limited per user by allauth's "login_failed" limit (5 per 5 minutes).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "Bordin")
# Accept the code of the previous or next 30-second step too (RFC 6238's allowance for clock
# drift and for a code typed as it changes); a used code is still refused.
MFA_TOTP_TOLERANCE = 1
MFA_ADAPTER = "clinics.adapters.MfaAdapter"

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "monitoring.security.signals.axes_username"
# The address axes locks on: the client's, as ClientAddressMiddleware set it (TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "monitoring.security.signals.client_ip"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "bordin@localhost")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")

TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", "django_tasks.backends.immediate.ImmediateBackend"),
    }
}

REDIS_URL = env("REDIS_URL")
CACHES: dict[str, dict[str, object]]
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # One process's memory: room for a large clinic's caseload rows, patient pages and charts (an
    # entry per patient and reading language for rows and pages, per episode for charts; the
    # default of 300 entries would evict a 300-patient caseload as it is read).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    # RQ workers: `manage.py rqworker default` (docs/operations.md); the queue lives in REDIS_URL.
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 900}}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token first: its 401 challenge (WWW-Authenticate: Bearer) is what an unauthenticated
    # request gets; the browser's session still works, with DRF's CSRF check on writes.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "monitoring.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["monitoring.api.auth.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env("API_RATE", "1000/hour")},
    "DEFAULT_PAGINATION_CLASS": "monitoring.api.auth.ApiPagination",
    # JSON only, at most 64 KB and 20 levels deep (413 too_large / 400 too_deep).
    "DEFAULT_PARSER_CLASSES": ["monitoring.api.auth.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS is 405: the schema describes the API
    "EXCEPTION_HANDLER": "monitoring.api.auth.api_exception_handler",
    "NUM_PROXIES": 0,  # the throttle's address is REMOTE_ADDR (see TRUSTED_PROXIES)
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Bordin API",
    "DESCRIPTION": (
        "Session-by-session therapeutic-alliance monitoring. Authenticate with a personal API token "
        "(`Authorization: Bearer bdn_...`, scoped to one clinic) or a signed-in browser session. "
        'Errors are `{"error": {"code", "message", "fields", "problems"}}`. '
        "Lists take `limit` and `offset`. See docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "clinics.models.Session.Status",
        "ExportStatusEnum": "monitoring.models.ExportJob.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "monitoring.api.auth.schema_error_responses",
    ],
    # Swagger UI from our own static files (drf-spectacular-sidecar): no CDN, CSP script-src 'self'.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Security headers. HTTPS-only settings follow from SECURE (on by default when DEBUG is off).
SECURE = env_bool("SECURE", default=not (DEBUG or TESTING))
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None


def _trusted_proxies(value: str) -> int | list[str]:
    """TRUSTED_PROXIES: empty or 0 (no proxy: X-Forwarded-For is ignored), a count of proxy hops
    in front of gunicorn ("1" for one nginx), or the proxies' networks ("10.0.0.0/8,fd00::/8")."""
    value = value.strip()
    if not value or value.isdigit():
        return int(value or 0)
    networks = [item.strip() for item in value.split(",") if item.strip()]
    try:
        for network in networks:
            ipaddress.ip_network(network, strict=False)
    except ValueError as error:
        raise RuntimeError(f"TRUSTED_PROXIES: {error} (see docs/operations.md).") from error
    return networks


# Which X-Forwarded-For entries to believe (monitoring.security.middleware.ClientAddressMiddleware
# sets REMOTE_ADDR from them for axes, allauth, the audit trail, DRF and the logs).
TRUSTED_PROXIES = _trusted_proxies(env("TRUSTED_PROXIES"))
# allauth, DRF: REMOTE_ADDR is already the client's; reading X-Forwarded-For again would be wrong.
ALLAUTH_TRUSTED_PROXY_COUNT = 0
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A session ends after SESSION_ABSOLUTE_SECONDS however active it is (IdleTimeoutMiddleware);
# the idle timeout is a clinic setting.
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
X_FRAME_OPTIONS = "DENY"

# Content Security Policy: our own scripts only, no eval (plotly's strict build), no third-party
# hosts. 'unsafe-inline' styles are needed by plotly's SVG and are all it needs. The Django admin
# (/django-admin/) gets the same policy: Django 5.2's admin has no inline script (its constants
# are data attributes of <script src>); its one inline <style> (change lists without actions) is
# covered by 'unsafe-inline' styles (tests/attacks/test_admin_csp.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# Logs: one JSON object per line (LOG_FORMAT=plain for reading in a terminal), with tokens and
# link paths scrubbed from every message (monitoring/logs.py). Pages and API responses are never
# logged, so patient data is not either.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "monitoring.security.logs.RedactingFilter"}},
    "formatters": {
        "json": {"()": "monitoring.security.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", "plain" if DEBUG else "json"),
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own loggers get only our handler (its default console handler, active with
        # DEBUG, would print paths unscrubbed); runserver's request lines carry link paths too.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"level": "WARNING"},
        "django_tasks": {"level": "WARNING"},
    },
}

# Demo and development conveniences.
BORDIN_SMS_BACKEND = env("SMS_BACKEND", "monitoring.collection.messaging.ConsoleSmsBackend")

# Steady patients simulated to calibrate a clinic's thresholds to its false-alarm budget at each
# estimate (monitoring.analytics.calibration; about a second for 1,500). The tests use fewer.
BORDIN_CALIBRATION_PATIENTS = env_int("CALIBRATION_PATIENTS", 1500)
