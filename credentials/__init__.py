"""Credentials: secret stores, credential types, OAuth2 connect and token refresh."""
