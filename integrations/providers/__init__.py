"""One folder per provider; the folder name is the provider's slug everywhere."""
