"""The database foundation (imports no app): claims and leases of work rows (``leases``) and
SQL written once per process (``raw_sql``)."""
