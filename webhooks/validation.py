"""Validation of a registration's configuration, shared by the model, admin, API and services."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from integrations import webhook_events as parsers
from webhooks import dedupe, routing
from webhooks.schemes import SCHEMES


def registration_errors(
    *,
    scheme: str,
    scheme_config,
    parser: str,
    parser_config,
    dedupe_rule,
    event_types,
    routes,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if scheme not in SCHEMES:
        errors["scheme"] = f"Unknown scheme {scheme!r}. Known: {', '.join(sorted(SCHEMES))}."
    elif not isinstance(scheme_config, dict):
        errors["scheme_config"] = "Must be a JSON object."
    else:
        problems = SCHEMES[scheme].validate_config(scheme_config)
        if problems:
            errors["scheme_config"] = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    if parser and parser not in parsers.PARSERS:
        errors["parser"] = (
            f"Unknown parser {parser!r}. Known: {', '.join(sorted(parsers.PARSERS))}."
        )
    if not isinstance(parser_config, dict):
        errors["parser_config"] = "Must be a JSON object."
    elif parser in parsers.CONFIG_VALIDATORS:
        problems = parsers.CONFIG_VALIDATORS[parser](parser_config)
        if problems:
            errors["parser_config"] = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    problem = dedupe.validate_rule(dedupe_rule)
    if problem:
        errors["dedupe_rule"] = problem
    if not isinstance(event_types, list) or not all(isinstance(t, str) and t for t in event_types):
        errors["event_types"] = "A list of event type patterns."
    problem = routing.validate_routes(routes)
    if problem:
        errors["routes"] = problem
    return errors


def validate_registration(registration) -> None:
    errors = registration_errors(
        scheme=registration.scheme,
        scheme_config=registration.scheme_config,
        parser=registration.parser,
        parser_config=registration.parser_config,
        dedupe_rule=registration.dedupe_rule,
        event_types=registration.event_types,
        routes=registration.routes,
    )
    if errors:
        raise ValidationError(errors)


def validate_secret(scheme: str, secret: str) -> None:
    if scheme in SCHEMES:
        problem = SCHEMES[scheme].validate_secret(secret)
        if problem:
            raise ValidationError({"secret": problem})
