"""Webhooks: registrations, signature schemes, receiver, processing, audit and replay."""
