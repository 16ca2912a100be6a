"""A bearer token stands for the service account (as a SCIM app's admin would issue one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser


class BearerToken:
    def __init__(self, get_response: Callable[[Any], Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        given = request.headers.get("Authorization", "")
        ok = given == f"Bearer {os.environ['DJSCIM_TOKEN']}"
        # never saved: the service account must not be listed among the app's users
        request.user = get_user_model()(username="scim-service", is_staff=True, is_superuser=True) if ok else None
        request.user = request.user or AnonymousUser()
        return self.get_response(request)
