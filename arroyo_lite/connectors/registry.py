"""The connector registry: built-ins plus third-party connectors from entry points.

Built-ins are ``polling_http``, ``impulse``, ``sse``, ``websocket`` (sources),
``single_file`` (source and sink) and ``stdout``, ``blackhole``, ``webhook``, ``filesystem``
(sinks). Third parties register a
:class:`~arroyo_lite.connectors.base.Connector` subclass in the entry-point group
``arroyo_lite.connectors`` (``name = "package.module:ConnectorClass"``); entry points are
loaded lazily, once, on the first lookup of a name that is not a built-in. A plugin that
fails to import or is not a ``Connector`` subclass is a
:class:`~arroyo_lite.errors.ConnectorError` naming the entry point. Lookups are exact and
case-sensitive, as in Arroyo.
"""

from __future__ import annotations

import importlib
import threading

from arroyo_lite.connectors.base import Connector
from arroyo_lite.errors import ConnectorError, did_you_mean

ENTRY_POINT_GROUP = "arroyo_lite.connectors"

_lock = threading.Lock()
_builtin_registry: dict[str, Connector] | None = None
_registry: dict[str, Connector] | None = None
_load_errors: list[ConnectorError] = []


#: The built-ins, in listing order: name -> (module, class). A built-in's module (and what it
#: needs: pyarrow, jsonschema, ...) is imported on the first lookup of its name, so checking
#: a file that uses one connector loads only that one.
BUILTINS: dict[str, tuple[str, str]] = {
    "polling_http": ("polling_http.connector", "PollingHttpConnector"),
    "impulse": ("impulse.connector", "ImpulseConnector"),
    "sse": ("sse.connector", "SseConnector"),
    "websocket": ("websocket.connector", "WebsocketConnector"),
    "single_file": ("single_file.connector", "SingleFileConnector"),
    "stdout": ("stdout.connector", "StdoutConnector"),
    "blackhole": ("blackhole.connector", "BlackholeConnector"),
    "webhook": ("webhook.connector", "WebhookConnector"),
    "filesystem": ("filesystem.connector", "FilesystemConnector"),
}


def _builtin(name: str) -> Connector | None:
    """The built-in connector ``name``, created once (``None``: not a built-in)."""
    global _builtin_registry
    if name not in BUILTINS:
        return None
    with _lock:
        if _builtin_registry is None:
            _builtin_registry = {}
        connector = _builtin_registry.get(name)
        if connector is None:
            module, cls = BUILTINS[name]
            made = getattr(importlib.import_module(f"arroyo_lite.connectors.{module}"), cls)()
            if made.name != name:
                raise AssertionError(f"built-in {module}.{cls} is named {made.name!r}")
            connector = _builtin_registry[name] = made
        return connector


def _builtins_once() -> dict[str, Connector]:
    """Every built-in, created once (the same objects before and after plugins load)."""
    found = {name: _builtin(name) for name in BUILTINS}
    return {name: c for name, c in found.items() if c is not None}


def _load_plugins(registry: dict[str, Connector]) -> list[ConnectorError]:
    # Imported here: scanning the installed distributions is needed only for plugins.
    from importlib.metadata import entry_points

    errors = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not break the built-ins
            errors.append(
                ConnectorError(
                    f"could not load connector plugin '{ep.name}' ({ep.value}): "
                    f"{type(e).__name__}: {e}"
                )
            )
            continue
        if not (isinstance(obj, type) and issubclass(obj, Connector)):
            errors.append(
                ConnectorError(
                    f"connector plugin '{ep.name}' ({ep.value}) is not a Connector subclass",
                    hint="the entry point must name a subclass of "
                    "arroyo_lite.connectors.base.Connector",
                )
            )
            continue
        try:
            connector = obj()
            name = connector.name
        except Exception as e:
            errors.append(
                ConnectorError(
                    f"could not create connector plugin '{ep.name}' ({ep.value}): "
                    f"{type(e).__name__}: {e}"
                )
            )
            continue
        if name in registry:
            errors.append(
                ConnectorError(
                    f"connector plugin '{ep.name}' ({ep.value}) reuses the name '{name}'; "
                    "the first registration is kept"
                )
            )
            continue
        registry[name] = connector
    return errors


def all_connectors() -> dict[str, Connector]:
    """Every connector by name: built-ins first, then plugins (loaded once)."""
    global _registry
    builtins = _builtins_once()
    with _lock:
        if _registry is None:
            registry = dict(builtins)
            _load_errors[:] = _load_plugins(registry)
            _registry = registry
        return dict(_registry)


def load_errors() -> list[ConnectorError]:
    """Problems met while loading plugins (shown by ``arroyo-lite connectors``)."""
    all_connectors()
    return list(_load_errors)


def get_connector(name: str) -> Connector:
    """The connector registered as ``name``; :class:`ConnectorError` with a did-you-mean if none.

    A built-in name never needs the plugins (they cannot take a built-in's name), so looking
    one up does not scan entry points: ``validate`` of a file of built-ins starts faster.
    """
    builtin = _builtin(name)
    if builtin is not None:
        return builtin
    connectors = all_connectors()
    if name in connectors:
        return connectors[name]
    hint = did_you_mean(name, connectors) or "available connectors: " + ", ".join(
        sorted(connectors)
    )
    raise ConnectorError(f"Unknown connector '{name}'", hint=hint)


def reset() -> None:
    """Forget loaded connectors so the next lookup reloads entry points (for tests)."""
    global _registry, _builtin_registry
    with _lock:
        _registry = None
        _builtin_registry = None
        _load_errors.clear()
