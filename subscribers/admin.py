from django.contrib import admin

from subscribers.models import Subscriber, Suppression


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ("email", "status", "frequency", "created_at", "requested_at", "confirmed_at")
    list_filter = ("status", "frequency")
    search_fields = ("email", "interests")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("email_hash", "reason", "detail", "created_at")
    list_filter = ("reason",)
