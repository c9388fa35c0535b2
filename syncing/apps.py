from django.apps import AppConfig


class SyncingConfig(AppConfig):
    name = "syncing"
    verbose_name = "Syncing"

    def ready(self):
        from syncing.reactions import push_rules, webhook_actions

        webhook_actions.register()
        push_rules.register()  # webhook-triggered pushes (push.evaluate_rules)

        from castiel.observability.health import register_check
        from syncing.records.stores.health import check_record_store

        register_check("record_store", check_record_store)

        from castiel.observability.metrics import register_scrape_collector
        from syncing.records import feed

        register_scrape_collector("change_feed", feed.lag_metrics)

        from integrations.signals import integration_resumed
        from syncing.records import outbox

        # Changes held while an integration was paused are due once it resumes.
        integration_resumed.connect(
            lambda sender, **kwargs: outbox.request_dispatch(), weak=False, dispatch_uid="resume"
        )

        from django.db.models.signals import pre_delete

        from integrations.models import Integration
        from syncing.records import cascade

        # Records deleted with their integration reach the change feed as deletions.
        pre_delete.connect(
            cascade.integration_deleting, sender=Integration, dispatch_uid="feed-cascade"
        )
