"""The user and group models django-scim2 asks a project for: Django's own, plus its SCIM mixins."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, Group
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class User(AbstractSCIMUserMixin, AbstractUser):
    @property
    def scim_groups(self) -> Any:
        return ScimGroup.objects.filter(user=self)


class ScimGroup(AbstractSCIMGroupMixin, Group):
    pass
