"""The registry of systems: every system the CLI, the grid, the store and the reports know.

>>> from serbench.systems import registry
>>> registry.names(kind="deep")                    # doctest: +SKIP
['cnn-sru', 'cnn', 'sru', 'crnn', 'crnn-ctc', 'crnn-mk', 'dcnn-blstm-att']
>>> registry.identify("cnn-sru-N5-spknorm")        # doctest: +SKIP
Identified(system=<system cnn-sru>, settings={'segments': 5, 'speaker_norm': True, ...})

The built-in systems register themselves the first time the registry is asked
(:func:`load_builtin` imports every module of :mod:`serbench.systems.builtin`); a new
system is one module there with a :class:`~serbench.systems.base.System` subclass and one
:func:`register` call (or any module of yours that calls :func:`register` before use).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from serbench.systems.base import System, SystemOptionError

_SYSTEMS: dict[str, System] = {}
_LOADED = False


def register(system: System | type[System]) -> System:
    """Add ``system`` (an instance, or a class to instantiate) to the registry; returns the instance.

    Usable as a class decorator. Registering a name again replaces the earlier system (so a
    test or a user module can override a built-in one deliberately).
    """
    inst = system() if isinstance(system, type) else system
    if not isinstance(inst, System) or not inst.name:
        raise SystemOptionError(f"{system!r}: a registered system must be a serbench System with a name")
    if inst.kind not in ("baseline", "deep"):
        raise SystemOptionError(f"system {inst.name}: kind must be 'baseline' or 'deep', not {inst.kind!r}")
    _SYSTEMS[inst.name] = inst
    return system if isinstance(system, type) else inst  # type: ignore[return-value]


def unregister(name: str) -> None:
    """Remove ``name`` (tests that register a toy system clean up with this)."""
    _SYSTEMS.pop(name, None)


def load_builtin() -> None:
    """Import every module of :mod:`serbench.systems.builtin` once, so the built-in systems are registered."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import serbench.systems.builtin as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"serbench.systems.builtin.{info.name}")


def get(name: str, *, kind: str | None = None) -> System:
    """The system called ``name``; an unknown name is an error listing the known ones."""
    load_builtin()
    system = _SYSTEMS.get(name)
    if system is None or (kind is not None and system.kind != kind):
        option = "--classifier" if kind == "baseline" else "--model"
        raise SystemOptionError(f"{option} {name!r}: unknown; choose one of {', '.join(names(kind=kind))}")
    return system


def all_systems(*, kind: str | None = None, table: str | None = None) -> list[System]:
    """Registered systems by their ``order``, optionally of one kind / report table."""
    load_builtin()
    found = [s for s in _SYSTEMS.values() if (kind is None or s.kind == kind) and (table is None or s.table == table)]
    return sorted(found, key=lambda s: s.order)  # stable: registration order within one order value


def names(*, kind: str | None = None, table: str | None = None) -> list[str]:
    return [s.name for s in all_systems(kind=kind, table=table)]


@dataclass(frozen=True)
class Identified:
    """What a stored system name means: its registered system and the settings the name encodes."""

    name: str
    system: System | None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.system.kind if self.system is not None else "other"

    @property
    def speaker_norm(self) -> bool:
        return bool(self.settings.get("speaker_norm", False))


def identify(name: str, record: dict | None = None) -> Identified:
    """Which system a stored ``name`` belongs to, preferring what its run record says.

    The record's ``config.system_type`` and ``config.settings`` win when present (runs written
    by this version); older records and bare names are parsed with each system's naming. Names
    that fit no system give ``system=None`` (shown as 'other' by the reports).
    """
    load_builtin()
    config = (record or {}).get("config") or {}
    typ = config.get("system_type")
    if typ in _SYSTEMS:
        system = _SYSTEMS[typ]
        settings = dict(config.get("settings") or {})
        parsed = system.parse_name(name) or {}
        return Identified(name, system, {**parsed, **settings})
    # Longest system names first, so 'cnn-sru-N3' is cnn-sru's, not cnn's.
    for system in sorted(_SYSTEMS.values(), key=lambda s: -len(s.name)):
        parsed = system.parse_name(name)
        if parsed is not None:
            # Older run records keep speaker_norm, segments, feature... at the top of config.
            for key in parsed:
                if key in config and config[key] is not None:
                    parsed[key] = config[key]
            return Identified(name, system, parsed)
    return Identified(name, None, {"speaker_norm": bool(config.get("speaker_norm", False))})


__all__ = ["register", "unregister", "get", "all_systems", "names", "identify", "Identified", "load_builtin"]
