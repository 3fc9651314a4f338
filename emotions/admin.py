from django.contrib import admin

from emotions.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "owner", "state", "progress", "device", "created_at")
    list_filter = ("kind", "state", "device")
    search_fields = ("owner__username", "message", "error")
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at", "celery_task_id")
