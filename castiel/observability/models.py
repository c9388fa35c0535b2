from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per live worker process, refreshed every ``CASTIEL_HEARTBEAT_INTERVAL``."""

    cluster = models.CharField(max_length=100, db_index=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "pid"], name="heartbeat_unique_process")
        ]
        ordering = ["cluster", "host", "pid"]

    def __str__(self) -> str:
        return f"{self.cluster}@{self.host}:{self.pid}"
