from django.urls import include, path

urlpatterns = [
    path("scim/v2/", include("django_scim.urls", namespace="scim")),
    path("scim2s/v2/", include("django_scim2_server.urls")),
]
