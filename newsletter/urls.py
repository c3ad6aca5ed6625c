from django.contrib import admin
from django.urls import include, path

from newsletter import archive, views, webhooks

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("digests/", include("newsletter.archive_urls")),
    # The tracking webhook of the provider EMAIL_BACKEND names (a 404 for every other one): newsletter/webhooks.py
    path("anymail/<str:esp>/tracking/", webhooks.tracking_webhook, name="tracking-webhook"),
    path("", archive.landing, name="landing"),
    path("", include("subscribers.urls")),
]
