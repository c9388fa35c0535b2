"""Dotted paths into parsed JSON — the one implementation is :mod:`integrations.jsonpath`
(negative list indices count from the end); kept here for the webhooks app's importers."""

from integrations.jsonpath import MISSING, get_path, valid_path

__all__ = ["MISSING", "get_path", "valid_path"]
