"""Collecting answers: the patient's form link (no account), the clinic tablet, paper entry."""

from __future__ import annotations

from django.urls import path

from monitoring.collection import staff_views, views

urlpatterns = [
    path("f/<str:token>/", views.form, name="form"),
    path("f/<str:token>/done/", views.form_done, name="form-done"),
    path("kiosk/", staff_views.kiosk, name="kiosk"),
    path("kiosk/<uuid:code>/", staff_views.kiosk_start, name="kiosk-start"),
    path("sessions/<uuid:code>/enter/<str:rater>/", staff_views.response_enter, name="response-enter"),
]
