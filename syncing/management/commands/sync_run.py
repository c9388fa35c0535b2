"""Run a sync task now, wait for it and print the run's summary.

    manage.py sync_run <task id>
    manage.py sync_run --integration CRM --entity contacts [--tenant demo]
    manage.py sync_run <task id> --inline      # run in this process (no worker needed)
    manage.py sync_run <task id> --no-wait     # queue it and return

Exit status 0 when the run succeeded (or was deferred and continues later), 1 with one line
on stderr when it failed or the task cannot run.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from castiel.commands import Progress, parse_uuid, tenant_by_slug
from integrations.selectors import integration_by_ref
from syncing import services
from syncing.models import SyncRun, SyncTask

FINAL = (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED, SyncRun.Status.LOST)
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Run a sync task now (by id, or integration + entity type), wait and print the run."

    def add_arguments(self, parser):
        parser.add_argument("task", nargs="?", help="sync task id")
        parser.add_argument("--integration", help="integration id or name (with --entity)")
        parser.add_argument("--entity", help="entity type (with --integration)")
        parser.add_argument("--tenant", help="tenant slug (when integration names repeat)")
        parser.add_argument(
            "--inline", action="store_true", help="run in this process instead of a worker"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue the run and return")
        parser.add_argument(
            "--timeout", type=float, default=600, help="seconds to wait for the run (600)"
        )

    def handle(self, *args, **options):
        task = self._task(options)
        integration = task.integration
        if not integration.is_operational:
            state = "disabled" if not integration.enabled else integration.status
            reason = f": {integration.status_reason}" if integration.status_reason else ""
            raise CommandError(f"integration {integration.name!r} is {state}{reason}")
        requested_at = timezone.now()
        queued = services.sync_task_run_now(task=task)
        if options["no_wait"]:
            what = "queued" if queued else "busy: it runs again when the current run ends"
            self.stdout.write(f"sync task {task.pk} ({task}): {what}")
            return
        if options["inline"]:
            if not queued:
                raise CommandError(
                    f"sync task {task.pk} is running elsewhere; wait for it without --inline"
                )
            self._run_inline(task)
        run = self._wait(task, requested_at, options["timeout"])
        self.stdout.write(summary(run))
        if run.status == SyncRun.Status.FAILED:
            first = (run.error_summary or "").splitlines()[0] if run.error_summary else ""
            raise CommandError(f"run {run.pk} failed: {run.error_code}: {first}"[:500])
        if run.status == SyncRun.Status.LOST:
            raise CommandError(f"run {run.pk} was lost (its worker died); it resumes by itself")

    def _task(self, options) -> SyncTask:
        queryset = SyncTask.objects.select_related("integration")
        if options["task"]:
            if options["integration"] or options["entity"]:
                raise CommandError("give a task id, or --integration and --entity, not both")
            task = queryset.filter(pk=parse_uuid(options["task"], "sync task")).first()
            if task is None:
                raise CommandError(f"no sync task {options['task']}")
            return task
        if not (options["integration"] and options["entity"]):
            raise CommandError("give a task id, or --integration and --entity")
        integration = integration_by_ref(options["integration"], tenant_by_slug(options["tenant"]))
        task = queryset.filter(integration=integration, entity_type=options["entity"]).first()
        if task is None:
            raise CommandError(
                f"integration {integration.name!r} has no sync task for {options['entity']!r}"
            )
        return task

    def _run_inline(self, task: SyncTask) -> None:
        """Take the claim's lease here (the queued message then finds it taken: a no-op) and
        follow resumptions (a run that stops at its time budget continues at once)."""
        from syncing.inbound.worker import run_inbound

        while True:
            token = SyncTask.objects.filter(pk=task.pk).values_list("lease_owner", flat=True)[0]
            current = SyncTask.objects.get(pk=task.pk)
            if not token or current.status != SyncTask.Status.QUEUED:
                return
            run_inbound(str(task.pk), token, SyncRun.Trigger.MANUAL)

    def _wait(self, task: SyncTask, since, timeout: float) -> SyncRun:
        deadline = time.monotonic() + timeout
        with Progress(self.stderr, total=None, label=f"syncing {task}", unit="records") as bar:
            while True:
                runs = list(SyncRun.objects.filter(task=task, started_at__gte=since))
                fetched = sum(r.fetched for r in runs)
                latest = max(runs, key=lambda r: r.started_at, default=None)
                if latest is not None:
                    bar.update(fetched, f"({sum(r.pages for r in runs)} pages, {latest.status})")
                    if latest.status in FINAL or self._deferred_for_later(task, latest):
                        return latest
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"no finished run of sync task {task.pk} after {timeout:g} s "
                        "(is a worker running? try --inline)"
                    )
                time.sleep(POLL_SECONDS)

    @staticmethod
    def _deferred_for_later(task: SyncTask, run: SyncRun) -> bool:
        if run.status != SyncRun.Status.DEFERRED:
            return False
        current = SyncTask.objects.get(pk=task.pk)
        return not current.lease_owner and current.next_run_at > timezone.now()


def summary(run: SyncRun) -> str:
    duration = run.duration_seconds or 0.0
    counts = ", ".join(f"{getattr(run, name)} {name}" for name in SyncRun.OUTCOME_COUNTERS)
    line = f"run {run.pk} {run.status} in {duration:.1f} s: {counts} ({run.pages} pages)"
    if run.status == SyncRun.Status.DEFERRED:
        line += (
            f"; continues later: {run.error_summary.splitlines()[0] if run.error_summary else ''}"
        )
    return line
