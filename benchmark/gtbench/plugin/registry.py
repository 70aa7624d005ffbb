"""One lazy registry for the five plugin kinds, fed by Python entry points.

Finding plugins reads distribution metadata only (fast ``gtbench list``); a plugin's
module is imported the first time it is used. A plugin that fails to import is reported
with its distribution and error and never affects the others; a failure is not cached,
so a transient error does not disable a plugin for the rest of the process.

Built-in plugins (those of the ``gtbench`` distribution) win name collisions; every
collision is recorded and shown by ``gtbench list``. ``GTBENCH_DISABLE_PLUGIN_AUTOLOAD=1``
keeps only the built-ins.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gtbench.errors import PluginError
from gtbench.plugin.spec import PluginSpec, parse_spec

if TYPE_CHECKING:
    from gtbench.plugin.base import Dataset, Extractor, Launcher, Plugin, Source
    from gtbench.train.method import Method

BUILTIN_DISTRIBUTION = "gtbench"
DISABLE_AUTOLOAD_ENV = "GTBENCH_DISABLE_PLUGIN_AUTOLOAD"

# kind -> (entry-point group, base class). The base class is named, not imported: finding
# plugins and rejecting unknown names must not import torch (a fast command line).
KINDS: dict[str, tuple[str, str]] = {
    "source": ("gtbench.sources", "gtbench.plugin.base:Source"),
    "method": ("gtbench.methods", "gtbench.train.method:Method"),
    "dataset": ("gtbench.datasets", "gtbench.plugin.base:Dataset"),
    "extractor": ("gtbench.extractors", "gtbench.plugin.base:Extractor"),
    "launcher": ("gtbench.launchers", "gtbench.plugin.base:Launcher"),
}

T = TypeVar("T", bound="Plugin")


def base_class(kind: str) -> type[Plugin]:
    """The base class every plugin of ``kind`` subclasses (imports the core's bases)."""
    import importlib

    module, _, attr = KINDS[kind][1].partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class PluginEntry:
    """One registered plugin: where it comes from, and the class once imported."""

    kind: str
    name: str
    target: str  # "module:attr"
    distribution: str
    version: str
    loaded: type[Plugin] | None = None

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def provenance(self) -> dict[str, str]:
        return {"distribution": self.distribution, "version": self.version, "target": self.target}


@dataclass
class Registry(Generic[T]):
    """Plugins of one kind, by name."""

    kind: str
    entries: dict[str, PluginEntry] = field(default_factory=dict)
    collisions: list[str] = field(default_factory=list)

    @property
    def base(self) -> type[T]:
        return base_class(self.kind)  # type: ignore[return-value]

    def add(self, entry: PluginEntry) -> None:
        """Add an entry; on a name collision the built-in wins, else the first one."""
        existing = self.entries.get(entry.name)
        if existing is None:
            self.entries[entry.name] = entry
            return
        if existing.target == entry.target and existing.distribution == entry.distribution:
            return  # the same entry point seen twice (duplicate metadata paths)
        keep, drop = (
            (entry, existing) if entry.builtin and not existing.builtin else (existing, entry)
        )
        self.entries[entry.name] = keep
        self.collisions.append(
            f"{self.kind} {entry.name!r}: {drop.distribution} {drop.version} ({drop.target}) "
            f"ignored; {keep.distribution} {keep.version} ({keep.target}) is used"
        )

    def register(self, name: str, plugin: type[T], distribution: str = "<runtime>") -> None:
        """Register a class directly (tests, notebooks)."""
        self.entries[name] = PluginEntry(
            self.kind, name, f"{plugin.__module__}:{plugin.__qualname__}", distribution, "", plugin
        )

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> PluginEntry:
        """The entry of ``name`` from metadata alone (no import); an unknown name raises
        the one-line "unknown ..., did you mean" error."""
        try:
            return self.entries[name]
        except KeyError:
            raise PluginError(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        message = f"unknown {self.kind} {name!r}"
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        if close:
            message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        elif self.names():
            message += f"; available: {', '.join(self.names())}"
        return message

    def get(self, name: str) -> type[T]:
        """The plugin class, importing it on first use."""
        entry = self.entry(name)
        if entry.loaded is not None:
            return entry.loaded  # type: ignore[return-value]
        module_name, _, attr = entry.target.partition(":")
        try:
            obj: Any = metadata.EntryPoint(name, entry.target, "").load()
        except Exception as error:  # noqa: BLE001 - any import failure is the plugin's
            raise PluginError(
                f"{self.kind} {name!r} from {entry.distribution} {entry.version} failed to "
                f"load ({module_name}:{attr}): {type(error).__name__}: {error}"
            ) from error
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise PluginError(
                f"{self.kind} {name!r} from {entry.distribution}: {entry.target} is not a "
                f"subclass of gtbench.api.{self.base.__name__}"
            )
        if not obj.name:
            obj.name = name
        entry.loaded = obj
        return obj  # type: ignore[return-value]

    def create(self, spec: PluginSpec | str) -> T:
        """Instantiate a plugin from ``name`` or ``name:key=value,...``."""
        if isinstance(spec, str):
            spec = parse_spec(spec)
        cls = self.get(spec.name)
        try:
            instance = cls(**dict(spec.params))
        except ValueError as error:
            message = str(error)
            if not message.startswith(f"{self.kind} "):  # name the plugin in the one line
                message = f"{self.kind} {spec.name!r}: {message}"
            raise PluginError(message) from None
        instance.name = spec.name  # the registered name, even for an aliased class
        return instance

    def load_error(self, name: str) -> str | None:
        """The error importing ``name`` gives, or None when it loads."""
        try:
            self.get(name)
        except PluginError as error:
            return str(error)
        return None


_REGISTRIES: dict[str, Registry[Any]] = {}


def _entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=group)


def discover(kind: str) -> Registry[Any]:
    """Build the registry of one kind from installed entry points (metadata only)."""
    group = KINDS[kind][0]
    registry: Registry[Any] = Registry(kind)
    builtins_only = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in {"", "0"}
    found = []
    for point in _entry_points(group):
        dist = point.dist
        dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
        version = dist.version if dist is not None else ""
        if builtins_only and dist_name != BUILTIN_DISTRIBUTION:
            continue
        found.append(PluginEntry(kind, point.name, point.value, dist_name, version))
    for entry in sorted(found, key=lambda e: (not e.builtin, e.distribution, e.name)):
        registry.add(entry)
    return registry


def registry(kind: str) -> Registry[Any]:
    """The process-wide registry of ``kind`` (discovered once)."""
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = discover(kind)
    return _REGISTRIES[kind]


def create(kind: str, spec: PluginSpec | str) -> Plugin:
    """An instance of the registered plugin ``spec`` (``name`` or ``name:key=value,...``)
    of ``kind``: what a plugin's own tests use to build, say, the ``debug`` source."""
    return registry(kind).create(spec)


def reset() -> None:
    """Forget discovered plugins (after installing a distribution, in tests)."""
    _REGISTRIES.clear()


def sources() -> Registry[Source]:
    return registry("source")


def methods() -> Registry[Method]:
    return registry("method")


def datasets() -> Registry[Dataset]:
    return registry("dataset")


def extractors() -> Registry[Extractor]:
    return registry("extractor")


def launchers() -> Registry[Launcher]:
    return registry("launcher")
