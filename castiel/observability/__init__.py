"""Correlation ids, structured logs, Prometheus metrics, worker heartbeats and health checks."""
