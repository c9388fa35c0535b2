"""The provider registry, filled once at start-up from the folders under ``providers/``."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from integrations.providers.base import ProviderInfo

_providers: dict[str, ProviderInfo] = {}


class UnknownProvider(LookupError):
    pass


def register(provider: ProviderInfo) -> ProviderInfo:
    existing = _providers.get(provider.slug)
    if existing is not None and existing != provider:
        raise ImproperlyConfigured(f"two providers claim the slug {provider.slug!r}")
    _providers[provider.slug] = provider
    return provider


def autodiscover(package: str = "integrations.providers") -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules([str(Path(module.__file__).parent)]):
        if not info.ispkg:
            continue
        provider_module = importlib.import_module(f"{package}.{info.name}")
        provider = getattr(provider_module, "PROVIDER", None)
        if not isinstance(provider, ProviderInfo):
            raise ImproperlyConfigured(
                f"{package}.{info.name} must define PROVIDER = ProviderInfo(...)"
            )
        if provider.slug != info.name:
            raise ImproperlyConfigured(
                f"provider folder {info.name!r} declares slug {provider.slug!r}; they must match"
            )
        register(provider)


def get(slug: str) -> ProviderInfo:
    try:
        return _providers[slug]
    except KeyError:
        raise UnknownProvider(slug) from None


def all_providers() -> list[ProviderInfo]:
    return sorted(_providers.values(), key=lambda p: p.slug)


def choices() -> list[tuple[str, str]]:
    return [(p.slug, p.name) for p in all_providers()]
