from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success

from castiel import admin_helpers as ui
from castiel.observability.models import WorkerHeartbeat

# -- narrower lists for the libraries' pages ---------------------------------------------------
# django-q2's and django-axes' lists carry more columns than fit beside the navigation sidebar
# and the filters at 1280 px: these keep what an operator scans for (the rest is on each
# row's page, and in the filters).


def _agent(obj):
    return ui.truncate(obj.user_agent, 24)


_agent.short_description = "user agent"


def _func(obj):
    return ui.truncate(obj.func, 32)


_func.short_description = "function"
_func.admin_order_field = "func"


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
    list_display = ("name", _func, "started", "time_taken")


class FailureAdmin(q_admin.FailAdmin):
    actions = [resubmit_task]
    list_display = ("name", _func, "started", "result_start")

    @admin.display(description="result")
    def result_start(self, obj):
        return ui.truncate(obj.result, 40)


class ScheduleAdmin(q_admin.ScheduleAdmin):
    list_display = ("name", _func, "next_run", "get_success")
    list_display_links = ("name",)


class QueueAdmin(q_admin.QueueAdmin):
    list_display = ("name", _func, "key", "lock")
    list_display_links = ("name",)


for _model, _model_admin in (
    (Success, SuccessAdmin),
    (Failure, FailureAdmin),
    (Schedule, ScheduleAdmin),
    (OrmQ, QueueAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)


# django-axes' lockout list offers "clean up expired attempts" (deletes them) to everyone
# who may view it: the same action, for those who may delete attempts.
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    list_display = [
        "attempt_time",
        "username",
        "ip_address",
        _agent,
        "failures_since_start",
        *(["status"] if "status" in axes_admin.AccessAttemptAdmin.list_display else []),
    ]

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        super().cleanup_expired_attempts(request, queryset)


class AccessLogAdmin(axes_admin.AccessLogAdmin):
    list_display = ("attempt_time", "logout_time", "username", "ip_address", _agent)


class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin):
    list_display = ("attempt_time", "username", "ip_address", _agent, "locked_out")


for _model, _model_admin in (
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)
