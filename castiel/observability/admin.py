from axes import admin as axes_admin
from axes.models import AccessAttempt
from django.contrib import admin
from django_q import admin as q_admin
from django_q.models import Failure, Success

from castiel.observability.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("cluster", "host", "pid", "started_at", "last_seen")
    list_filter = ("cluster", "host")
    readonly_fields = ("cluster", "host", "pid", "started_at", "last_seen")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The task queue's pages (django_q's admin) offer "resubmit" to everyone who may view a task:
# the same action, for those who may change it.
@admin.action(description="Resubmit selected tasks to queue", permissions=["change"])
def resubmit_task(model_admin, request, queryset):
    q_admin.resubmit_task(model_admin, request, queryset)


class SuccessAdmin(q_admin.TaskAdmin):
    actions = [resubmit_task]


class FailureAdmin(q_admin.FailAdmin):
    actions = [resubmit_task]


for _model, _model_admin in ((Success, SuccessAdmin), (Failure, FailureAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)


# django-axes' lockout list offers "clean up expired attempts" (deletes them) to everyone
# who may view it: the same action, for those who may delete attempts.
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, AccessAttemptAdmin)
