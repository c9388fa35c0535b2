from castiel.schedules import declare

# The database backend leaves one row per counter; drop the ones with nothing live.
declare("ratelimit-cleanup", "ratelimit.tasks.delete_expired_counters", minutes=60)
