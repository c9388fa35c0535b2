"""Notifications: incidents from events, channels, subscriptions, deliveries, digests."""
