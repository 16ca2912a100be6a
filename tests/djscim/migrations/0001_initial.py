"""The tables of tests/djscim/models.py (first written by `makemigrations`, then folded by hand)."""

import django.contrib.auth.models
import django.contrib.auth.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def text(name: str, **options: object) -> models.CharField:
    return models.CharField(blank=True, default=None, max_length=254, null=True, verbose_name=name, **options)


def scim_common() -> list:
    """The fields django-scim2's AbstractSCIMCommonAttributesMixin gives both models."""
    return [
        ("scim_id", text("SCIM ID", unique=True, help_text="SCIM id as defined by the service provider.")),
        ("scim_external_id", text("SCIM External ID", db_index=True, help_text="id given by the client.")),
    ]


def user_fields() -> list:
    validator = django.contrib.auth.validators.UnicodeUsernameValidator()
    return [
        ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
        ("password", models.CharField(max_length=128, verbose_name="password")),
        ("last_login", models.DateTimeField(blank=True, null=True, verbose_name="last login")),
        ("is_superuser", models.BooleanField(default=False, verbose_name="superuser status")),
        ("username", models.CharField(max_length=150, unique=True, validators=[validator], verbose_name="username")),
        ("first_name", models.CharField(blank=True, max_length=150, verbose_name="first name")),
        ("last_name", models.CharField(blank=True, max_length=150, verbose_name="last name")),
        ("email", models.EmailField(blank=True, max_length=254, verbose_name="email address")),
        ("is_staff", models.BooleanField(default=False, verbose_name="staff status")),
        ("is_active", models.BooleanField(default=True, verbose_name="active")),
        ("date_joined", models.DateTimeField(default=django.utils.timezone.now, verbose_name="date joined")),
        *scim_common(),
        ("scim_username", text("SCIM Username", db_index=True, help_text="the user's unique identifier")),
        (
            "groups",
            models.ManyToManyField(
                blank=True, related_name="user_set", related_query_name="user", to="auth.group", verbose_name="groups"
            ),
        ),
        (
            "user_permissions",
            models.ManyToManyField(
                blank=True,
                related_name="user_set",
                related_query_name="user",
                to="auth.permission",
                verbose_name="user permissions",
            ),
        ),
    ]


class Migration(migrations.Migration):
    initial = True
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]  # noqa: RUF012 - Django's own shape
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="ScimGroup",
            fields=[
                (
                    "group_ptr",
                    models.OneToOneField(
                        auto_created=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        parent_link=True,
                        primary_key=True,
                        serialize=False,
                        to="auth.group",
                    ),
                ),
                *scim_common(),
                ("scim_display_name", text("SCIM Display Name", db_index=True, help_text="the group's name")),
            ],
            options={"abstract": False},
            bases=("auth.group", models.Model),
            managers=[("objects", django.contrib.auth.models.GroupManager())],
        ),
        migrations.CreateModel(
            name="User",
            fields=user_fields(),
            options={"abstract": False},
            managers=[("objects", django.contrib.auth.models.UserManager())],
        ),
    ]
