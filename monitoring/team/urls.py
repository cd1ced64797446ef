"""The team page of a clinic (its supervisors and admins)."""

from __future__ import annotations

from django.urls import path

from monitoring.team import views

urlpatterns = [
    path("team/<slug:slug>/", views.team, name="team"),
]
