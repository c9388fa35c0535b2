"""Per-task field mapping: remote record → local fields.

A mapping is a JSON object ``{"local_field": spec}`` where ``spec`` is a dotted remote path
(``"properties.email"``) or ``{"path": "...", "transform": "...", "default": ...}``. An empty
mapping copies the remote record as it is. Transforms are small and deterministic so the
content hash of a mapped record only changes when the data does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.adapters.normalize import normalize_domain, normalize_email, normalize_phone
from integrations.adapters.pagination import dig


class MappingError(ValueError):
    """The mapping itself is invalid (raised before any record is touched)."""


class RecordMappingError(ValueError):
    """One record cannot be mapped (counted as a record error, the page goes on)."""


def _to_int(value):
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    return int(value)


def _to_bool(value):
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "y"):
            return True
        if lowered in ("false", "0", "no", "n", ""):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "str": lambda v: str(v),
    "int": _to_int,
    "float": lambda v: float(v),
    "bool": _to_bool,
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "strip": lambda v: str(v).strip(),
    "email": normalize_email,
    "phone_e164": normalize_phone,
    "domain": normalize_domain,
}


class FieldMapping:
    def __init__(self, spec: dict | None):
        self.spec = {} if spec is None else spec
        self._compiled: list[tuple[str, str, Callable | None, Any]] = []
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.spec, dict):
            raise MappingError("field mapping must be a JSON object of local field → remote path")
        compiled = []
        for local, spec in self.spec.items():
            if not isinstance(local, str) or not local:
                raise MappingError("local field names must be non-empty strings")
            if isinstance(spec, str):
                path, transform, default = spec, None, None
            elif isinstance(spec, dict):
                unknown = set(spec) - {"path", "transform", "default"}
                if unknown:
                    raise MappingError(f"{local}: unknown keys {sorted(unknown)}")
                path, transform, default = (
                    spec.get("path"),
                    spec.get("transform"),
                    spec.get("default"),
                )
            else:
                raise MappingError(f"{local}: expected a path string or an object")
            if not isinstance(path, str) or not path:
                raise MappingError(f"{local}: 'path' must be a non-empty string")
            if transform is not None and transform not in TRANSFORMS:
                raise MappingError(
                    f"{local}: unknown transform {transform!r} "
                    f"(known: {', '.join(sorted(TRANSFORMS))})"
                )
            compiled.append((local, path, TRANSFORMS.get(transform), default))
        self._compiled = compiled

    @property
    def is_identity(self) -> bool:
        return not self._compiled

    def apply(self, record: dict) -> dict:
        if not self._compiled:
            return dict(record)
        out = {}
        for local, path, transform, default in self._compiled:
            value = dig(record, path)
            if value is None:
                out[local] = default
                continue
            if transform is not None:
                try:
                    value = transform(value)
                except (TypeError, ValueError) as exc:
                    raise RecordMappingError(f"{local}: {exc}") from None
            out[local] = value
        return out

    def to_remote(self, data: dict, fields: list[str] | None = None) -> dict:
        """Local fields → the provider's shape, for a push (``fields``: only these).

        Each local field goes back to its remote path (dotted paths build nested objects).
        Transforms are normalisations (lower-case, E.164, …), not encodings, so the local
        value is what the provider should hold; a field removed locally is sent as null.
        """
        wanted = list(data) if fields is None else list(fields)
        if not self._compiled:
            return {name: data.get(name) for name in wanted}
        paths = {local: path for local, path, _transform, _default in self._compiled}
        out: dict = {}
        for name in wanted:
            path = paths.get(name)
            if path is None:
                continue  # a local-only field: nothing to push
            target = out
            *parents, leaf = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    break
            else:
                target[leaf] = data.get(name)
        return out

    def local_name(self, remote_field: str) -> str | None:
        """The local field a top-level remote field maps to (itself for identity mappings)."""
        if not self._compiled:
            return remote_field
        for local, path, _transform, _default in self._compiled:
            if path == remote_field:
                return local
        return None
