from django.apps import AppConfig


class SyncingConfig(AppConfig):
    name = "syncing"
    verbose_name = "Syncing"

    def ready(self):
        from syncing import rules, webhook_actions

        webhook_actions.register()
        rules.register()  # push.evaluate_rules: webhook-triggered pushes (syncing/rules.py)

        from castiel.observability.health import register_check
        from syncing.stores.health import check_record_store

        register_check("record_store", check_record_store)
