"""External systems: the provider catalogue, adapters and connected integrations."""
