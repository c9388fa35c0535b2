"""Generic HMAC for providers without a dedicated scheme.

Options (``scheme_config``):

* ``header`` (required): the header carrying the signature;
* ``algorithm``: ``sha1``, ``sha256`` (default) or ``sha512``;
* ``encoding``: ``hex`` (default) or ``base64``;
* ``prefix``: text before the signature in the header (``sha256=``);
* ``separator``: when the header lists several signatures (e.g. ``,`` or a space);
* ``template``: the signed content, default ``{body}``; placeholders ``{body}``,
  ``{timestamp}``, ``{id}``, ``{method}``, ``{url}``, ``{path}`` and ``{header:Name}``;
* ``timestamp_header`` (+ ``timestamp_unit`` ``s``/``ms``): a signed timestamp checked
  against the registration's tolerance;
* ``id_header``: fills ``{id}``;
* ``url``: the public URL the provider calls, for ``{url}`` behind a proxy (scheme, host and
  path; the query is always the request's own);
* ``secret_encoding``: how to turn the secret into key bytes — ``utf8`` (default),
  ``base64`` or ``hex``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from webhooks.schemes.base import (
    DIGESTS,
    MALFORMED_SIGNATURE,
    MISSING_HEADER,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    as_bytes,
    check_tolerance,
    equal,
    hmac_digest,
    match_any,
    parse_timestamp,
)

_PLACEHOLDER = re.compile(r"\{(body|timestamp|id|method|url|path|header:[A-Za-z0-9_-]+)\}")


def key_bytes(secret: str, encoding: str) -> bytes | None:
    try:
        if encoding == "base64":
            return base64.b64decode(secret, validate=True)
        if encoding == "hex":
            return bytes.fromhex(secret)
    except (binascii.Error, ValueError):
        return None
    return secret.encode()


class GenericHmacScheme(Scheme):
    slug = "generic_hmac"
    label = "Generic HMAC (configurable header, algorithm, encoding, template)"
    config_options = {
        "header": "Header carrying the signature (required).",
        "algorithm": "sha1, sha256 (default) or sha512.",
        "encoding": "hex (default) or base64.",
        "prefix": "Text before the signature, e.g. sha256=.",
        "separator": "Separator when the header lists several signatures.",
        "template": "Signed content; default {body}.",
        "timestamp_header": "Header with a signed timestamp (enables the tolerance check).",
        "timestamp_unit": "s (default) or ms.",
        "id_header": "Header with a message id ({id} in the template).",
        "secret_encoding": "utf8 (default), base64 or hex.",
        "url": "The public URL the provider calls, for {url} (when a proxy changes it).",
    }

    receiver_chooses_secret = True

    def generate_secret(self, config):
        encoding = config.get("secret_encoding", "utf8")
        if encoding == "base64":
            return base64.b64encode(secrets.token_bytes(32)).decode()
        if encoding == "hex":
            return secrets.token_hex(32)
        return super().generate_secret(config)

    def validate_config(self, config):
        errors = super().validate_config(config)
        if not config.get("header"):
            errors["header"] = "Name the header that carries the signature."
        if config.get("algorithm", "sha256") not in DIGESTS:
            errors["algorithm"] = f"One of {', '.join(sorted(DIGESTS))}."
        if config.get("encoding", "hex") not in ("hex", "base64"):
            errors["encoding"] = "hex or base64."
        if config.get("secret_encoding", "utf8") not in ("utf8", "base64", "hex"):
            errors["secret_encoding"] = "utf8, base64 or hex."  # noqa: S105 - a message
        if config.get("timestamp_unit", "s") not in ("s", "ms"):
            errors["timestamp_unit"] = "s or ms."
        template = config.get("template", "{body}")
        if not isinstance(template, str) or "{body}" not in template:
            errors["template"] = "The template must contain {body}."
        elif "{timestamp}" in template and not config.get("timestamp_header"):
            errors["template"] = "{timestamp} needs timestamp_header."
        elif "{id}" in template and not config.get("id_header"):
            errors["template"] = "{id} needs id_header."
        return errors

    def signed_content(self, incoming, config: dict) -> bytes:
        template = config.get("template", "{body}")
        out = bytearray()
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            out += template[position : match.start()].encode()
            out += self._value(match.group(1), incoming, config)
            position = match.end()
        out += template[position:].encode()
        return bytes(out)

    def _value(self, name: str, incoming, config: dict) -> bytes:
        if name == "body":
            return incoming.body
        if name == "method":
            return incoming.method.encode()
        if name == "url":
            return incoming.url.encode()
        if name == "path":
            return incoming.path.encode()
        header = {
            "timestamp": config.get("timestamp_header"),
            "id": config.get("id_header"),
        }.get(name) or name.partition(":")[2]
        value = incoming.header(header)
        if value is None:
            raise VerificationFailed(MISSING_HEADER, header)
        return as_bytes(value)

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header(config["header"])
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        prefix = config.get("prefix", "")
        separator = config.get("separator")
        candidates = header.split(separator) if separator else [header]
        candidates = [c.strip() for c in candidates]
        if prefix:
            candidates = [c[len(prefix) :] for c in candidates if c.startswith(prefix)]
            if not candidates:
                raise VerificationFailed(MALFORMED_SIGNATURE)
        timestamp = None
        if config.get("timestamp_header"):
            timestamp = parse_timestamp(
                incoming.header(config["timestamp_header"]),
                unit=config.get("timestamp_unit", "s"),
            )
        content = self.signed_content(incoming, config)
        algorithm = config.get("algorithm", "sha256")
        encoding = config.get("encoding", "hex")
        secret_encoding = config.get("secret_encoding", "utf8")

        def matches(key) -> bool:
            material = key_bytes(key.value, secret_encoding)
            if material is None:
                return False
            digest = hmac_digest(material, content, algorithm)
            if encoding == "hex":
                expected, given = digest.hex(), [c.lower() for c in candidates]
            else:
                expected, given = base64.b64encode(digest).decode(), candidates
            return sum(equal(expected, g) for g in given) > 0

        label = match_any(keys, matches)
        if timestamp is not None:
            check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)
