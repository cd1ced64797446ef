"""Test settings: the production settings with a test flag and a fast password hasher."""

from __future__ import annotations

import os

os.environ.setdefault("BORDIN_TESTING", "1")

from monitoring.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
BORDIN_CALIBRATION_PATIENTS = 200
