"""Settings of the tiny Django project around two SCIM providers by different people, django-scim2
(15five) at /scim/v2/ and django-scim2-server (browniebroke) at /scim2s/v2/; the port, database file and bearer
token come from the environment the launcher sets."""

import os

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "tests.djscim.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "django_scim2_server",
    "tests.djscim",
]
AUTH_USER_MODEL = "djscim.User"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJSCIM_DB"]}}
MIDDLEWARE = ["tests.djscim.auth.BearerToken", "django_scim.middleware.SCIMAuthCheckMiddleware"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SCIM_SERVICE_PROVIDER = {
    "NETLOC": f"127.0.0.1:{os.environ['DJSCIM_PORT']}",
    "SCHEME": "http",
    "GROUP_MODEL": "tests.djscim.models.ScimGroup",
    "AUTHENTICATION_SCHEMES": [
        {"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "a bearer token"}
    ],
}
SCIM2_SERVER_USER_MODEL = "djscim.User"
LOGGING = {"version": 1, "disable_existing_loggers": True}
