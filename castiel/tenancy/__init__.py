"""Tenants, their API keys, and tenant scoping for every API endpoint."""
