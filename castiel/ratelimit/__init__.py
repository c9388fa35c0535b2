"""Multi-level rate limiting shared by every process."""
