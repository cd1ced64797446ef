"""Project URLs. The alliance app's own routes live under the ``monitoring`` namespace."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from monitoring import views

app_urls = (
    [
        path("", views.caseload, name="caseload"),
    ],
    "monitoring",
)

urlpatterns = [
    path("", include(app_urls)),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("django-admin/", admin.site.urls),
]
