from django.apps import AppConfig


class SyncingConfig(AppConfig):
    name = "syncing"
    verbose_name = "Syncing"

    def ready(self):
        from syncing import rules, webhook_actions

        webhook_actions.register()
        rules.register()  # push.evaluate_rules: webhook-triggered pushes (syncing/rules.py)
