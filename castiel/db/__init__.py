"""The database foundation (imports no app): claims and leases of work rows (``leases``), SQL
written once per process (``raw_sql``) and statements sent to PostgreSQL ahead while the
worker does other work (``overlap``)."""
