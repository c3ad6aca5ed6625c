from django.contrib import admin

from newsletter.models import Delivery, Digest, DigestPaper


class DigestPaperInline(admin.TabularInline):
    model = DigestPaper
    extra = 0
    raw_id_fields = ("paper",)


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("date", "status", "send_started_at", "sent_at")
    list_filter = ("status",)
    inlines = [DigestPaperInline]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("digest", "subscriber", "status", "message_id", "sent_at")
    list_filter = ("status", "digest")
    raw_id_fields = ("subscriber", "digest")
