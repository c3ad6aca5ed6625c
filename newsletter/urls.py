from django.contrib import admin
from django.urls import include, path

from newsletter import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("digests/", include("newsletter.archive_urls")),
    path("anymail/", include("anymail.urls")),  # provider webhooks: /anymail/<esp>/tracking/
    path("", include("subscribers.urls")),
]
