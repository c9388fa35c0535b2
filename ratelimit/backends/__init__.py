"""Where counters live: Redis (production), the database (embedded), process memory."""
