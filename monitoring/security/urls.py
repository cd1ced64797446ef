"""The signed-in user's own account pages."""

from __future__ import annotations

from django.urls import path

from monitoring.security import views

urlpatterns = [
    path("account/api-tokens/", views.api_tokens, name="api-tokens"),
    path("account/notifications/", views.notification_settings, name="notification-settings"),
]
