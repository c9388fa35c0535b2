"""Static credentials: API key (header or query), HTTP basic, bearer token."""

from __future__ import annotations

import requests

from credentials.types.base import CredentialKind, Field, HeaderAuth, header_name


class ApiKey(CredentialKind):
    slug = "api_key"
    label = "API key"
    secret_fields = (Field("api_key", help="The key."),)
    settings_fields = (
        Field("location", required=False, choices=("header", "query"), default="header"),
        Field("name", required=False, help="Header or query parameter name."),
        Field("prefix", required=False, help='Text before the key in the header, e.g. "Token ".'),
    )

    def clean_together(self, cleaned, errors):
        settings = cleaned.settings
        if settings["location"] == "header":
            settings.setdefault("name", "X-API-Key")
            try:
                header_name(settings["name"])
            except ValueError as exc:
                errors["settings.name"] = str(exc)
        else:
            settings.setdefault("name", "api_key")
            if "prefix" in settings:
                errors["settings.prefix"] = "only used when location is header"

    def applier(self, secret, settings):
        value = settings.get("prefix", "") + secret["api_key"]
        if settings.get("location", "header") == "query":
            return HeaderAuth(params={settings.get("name", "api_key"): secret["api_key"]})
        return HeaderAuth(headers={settings.get("name", "X-API-Key"): value})


class Basic(CredentialKind):
    slug = "basic"
    label = "HTTP basic"
    secret_fields = (Field("username"), Field("password"))

    def applier(self, secret, settings):
        # UTF-8, as RFC 7617 §2.1 recommends (requests would encode str as Latin-1).
        return requests.auth.HTTPBasicAuth(secret["username"].encode(), secret["password"].encode())


class BearerToken(CredentialKind):
    slug = "bearer_token"
    label = "Bearer token"
    secret_fields = (Field("token"),)
    settings_fields = (
        Field("header", required=False, default="Authorization", check=header_name),
        Field("scheme", required=False, default="Bearer", help="Word before the token."),
    )

    def applier(self, secret, settings):
        header = settings.get("header", "Authorization")
        scheme = settings.get("scheme", "Bearer")
        value = f"{scheme} {secret['token']}" if scheme else secret["token"]
        return HeaderAuth(headers={header: value})
