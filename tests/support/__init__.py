"""Test infrastructure: real services, subprocesses, factories."""
