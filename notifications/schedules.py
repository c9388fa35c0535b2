from castiel.schedules import declare

# Digests, reminders, quiet-period resolution and the delivery sweeper.
declare("notifications.tick", "notifications.tasks.tick", minutes=1)
declare("notifications.purge", "notifications.tasks.purge", minutes=60)
