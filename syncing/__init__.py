"""Sync: scheduler, inbound pipeline, record stores, outbound outbox, runs and reaper."""
