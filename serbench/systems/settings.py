"""Settings of a system: one frozen dataclass per system, profiles, and the one validator.

A system's settings class declares every field with :func:`setting`: its default (the
``paper`` value unless a profile says otherwise), what it means, the constraint it must
meet (:class:`Interval`, :class:`Options`, :class:`Each`) and, where a command-line flag
sets it, that flag. ``PROFILES`` maps a profile name to the fields it changes.
:meth:`Settings.build` applies a profile and ``--set key=value`` overrides, converts strings
to the field types, and checks every field in one place (:func:`validate`), so every
system refuses bad values with the same kind of message::

    --set cnn_lr=nan: must be a finite number > 0

A cross-field rule of one system goes in its :meth:`Settings.check`, raising
:meth:`Settings.bad`.

A setting a system no longer has is listed in its ``RETIRED`` with the value every profile
gave it; :meth:`Settings.drop_retired` is the one rule for recorded settings (model bundles,
run records, run identities): a retired setting at that value had no effect and is dropped,
at any other value the record is refused.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from serbench.errors import SerbenchError


class SettingsError(SerbenchError):
    """An unknown profile or setting, or a value that breaks its constraint."""


# ---------------------------------------------------------------- constraints

@dataclass(frozen=True)
class Interval:
    """A number in an interval; ``closed`` is 'both', 'left', 'right' or 'neither'. Floats must be finite."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def ok(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left)):
            return False
        if self.high is not None and (v > self.high or (v == self.high and not right)):
            return False
        return True

    def describe(self) -> str:
        lo_op = ">=" if self.closed in ("both", "left") else ">"
        hi_op = "<=" if self.closed in ("both", "right") else "<"
        if self.low is not None and self.high is not None:
            lb = "[" if lo_op == ">=" else "("
            rb = "]" if hi_op == "<=" else ")"
            return f"in {lb}{self.low:g}, {self.high:g}{rb}"
        if self.low is not None:
            return f"{lo_op} {self.low:g}"
        if self.high is not None:
            return f"{hi_op} {self.high:g}"
        return "finite"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def ok(self, v: Any) -> bool:
        return v in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


@dataclass(frozen=True)
class Each:
    """A non-empty tuple whose every item meets ``item`` (and, with ``odd``, is odd)."""

    item: Interval
    odd: bool = False

    def ok(self, v: tuple) -> bool:
        return len(v) > 0 and all(self.item.ok(x) and (not self.odd or x % 2 == 1) for x in v)

    def describe(self) -> str:
        return ("a comma-separated list of " + ("odd " if self.odd else "") + f"integers {self.item.describe()}")


POSITIVE = Interval(0, None, "neither")
NON_NEGATIVE = Interval(0, None, "both")
AT_LEAST_ONE = Interval(1, None)
FRACTION = Interval(0, 1, "left")       # [0, 1): dropout, smoothing


def setting(default: Any, doc: str = "", *, check: Any = None, flag: str | None = None) -> Any:
    """A settings field: ``default``, one line of ``doc``, a ``check`` constraint, the CLI ``flag`` setting it."""
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check, "flag": flag})


# ---------------------------------------------------------------- coercion

def _base_type(tp: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``tuple[int, ...]`` -> (tuple, False)."""
    optional = False
    args = typing.get_args(tp)
    if type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else rest
    origin = typing.get_origin(tp)
    if origin is tuple:
        return tuple, optional
    return tp, optional


def coerce(name: str, tp: Any, value: Any, flag: str | None = None) -> Any:
    """``value`` (a ``--set`` string or a Python value) as the field type ``tp``; names the option when it does not fit."""
    typ, optional = _base_type(tp)
    where = flag or f"--set {name}"
    shown = f"{where} {value}" if flag else f"{where}={value}"
    if value is None or (isinstance(value, str) and optional and value.strip().lower() in ("", "none", "null")):
        if optional:
            return None
        raise SettingsError(f"{shown}: a value is required")
    kind = "comma-separated list of integers" if typ is tuple else getattr(typ, "__name__", str(typ))
    if isinstance(value, str):
        v = value.strip()
        try:
            if typ is bool:
                if v.lower() in ("1", "true", "yes", "on"):
                    return True
                if v.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(v)
            if typ is tuple:
                return tuple(int(p) for p in v.replace(" ", "").split(",") if p)
            if typ is int:
                return int(v)
            if typ is float:
                return float(v)
            return typ(v)
        except ValueError:
            raise SettingsError(f"{shown}: expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}") from None
    if typ is tuple and isinstance(value, (list, tuple)) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in value):
        return tuple(value)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if typ is str and isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, typ) or (typ in (int, float) and isinstance(value, bool)):
        raise SettingsError(f"{shown}: expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}")
    return value


# ---------------------------------------------------------------- the base class

#: The one default profile of the CLI, experiment files and the Python API: sized for CPUs.
DEFAULT_PROFILE = "fast"


@dataclass(frozen=True)
class Settings:
    """Base of every system's settings. Subclasses add fields with :func:`setting` and ``PROFILES``."""

    profile: str = setting("paper", "the profile these settings started from")
    speaker_norm: bool = setting(False, "z-score each speaker with its own statistics (label-free; off in the "
                                        "paper)", flag="--speaker-norm")

    #: Profile name -> the fields it changes from the defaults. Without a profile name, :data:`DEFAULT_PROFILE`
    #: is used where a system has it, else the first profile.
    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {"paper": {}}
    #: Settings this system no longer has -> the value every profile gave them (the neutral one): a record
    #: that holds one at that value ran as this version runs; see :meth:`drop_retired`.
    RETIRED: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def default_profile(cls) -> str:
        """The profile used when none is named: :data:`DEFAULT_PROFILE` where defined (never ``paper`` by accident)."""
        return DEFAULT_PROFILE if DEFAULT_PROFILE in cls.PROFILES else next(iter(cls.PROFILES))

    @classmethod
    def option_name(cls, key: str) -> str:
        """How a user sets ``key``: its flag (``--segments``) or ``--set key``."""
        flag = cls.fields()[key].metadata.get("flag") if key in cls.fields() else None
        return flag or f"--set {key}"

    @classmethod
    def build(cls, profile: str | None = None, overrides: Mapping[str, Any] | None = None, *,
              system: str = "") -> "Settings":
        """Settings of ``profile`` (None: :meth:`default_profile`) with ``overrides`` applied and validated."""
        name = profile or cls.default_profile()
        if name not in cls.PROFILES:
            raise SettingsError(f"--profile {name!r}: unknown{f' for {system}' if system else ''}; choose one of "
                                f"{', '.join(cls.PROFILES)}")
        fields = cls.fields()
        types = cls.types()
        known = sorted(k for k in fields if k != "profile")
        for key in overrides or {}:
            if key not in fields or key == "profile":
                raise SettingsError(f"--set {key}: not a setting{f' of {system}' if system else ''}; its settings: "
                                    f"{', '.join(known)}")
        values = {"profile": name, **cls.PROFILES[name], **(overrides or {})}
        values = {k: coerce(k, types[k], v, fields[k].metadata.get("flag")) for k, v in values.items()}
        s = cls(**values)
        validate(s)
        return s

    @classmethod
    def drop_retired(cls, recorded: Mapping[str, Any], *, where: str) -> dict:
        """``recorded`` settings (a bundle's model.json, a run record) less the retired ones at their neutral value.

        A retired setting (:attr:`RETIRED`) at any other value is refused in one line naming ``where``
        (the bundle, record or run), the setting and that this version no longer has it. Other keys pass
        unchanged: what a caller does with settings it does not know is its own rule.
        """
        out = dict(recorded)
        for key, neutral in cls.RETIRED.items():
            if key not in out:
                continue
            value = out.pop(key)
            same = (value == neutral and isinstance(value, bool) == isinstance(neutral, bool)
                    and isinstance(value, str) == isinstance(neutral, str))
            if not same:
                raise SettingsError(f"{where}: setting {key}={_shown(value)}: this version of serbench no longer "
                                    f"has {key} (only its neutral value {_shown(neutral)} can be read); use the "
                                    "serbench that wrote it")
        return out

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes``, validated."""
        s = dataclasses.replace(self, **changes)
        validate(s)
        return s

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def bad(self, key: str, what: str) -> SettingsError:
        """The error for field ``key``: ``--set key=value: what`` (or its flag)."""
        value = getattr(self, key)
        flag = type(self).fields()[key].metadata.get("flag")
        if value is None:
            return SettingsError(f"{flag or f'--set {key}'} is required: {what}")
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return SettingsError(f"{flag} {shown}: {what}" if flag else f"--set {key}={shown}: {what}")

    def check(self) -> None:
        """Cross-field rules of a system (override; raise ``self.bad(key, what)``)."""


def _shown(value: Any) -> str:
    """A recorded value as a user writes it (``--set key=value``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def validate(s: Settings) -> None:
    """Check every field against its constraint, then the system's own :meth:`Settings.check`."""
    types = type(s).types()
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        typ, optional = _base_type(types[f.name])
        if value is None:
            if not optional:
                raise s.bad(f.name, "a value is required")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise s.bad(f.name, "must be a finite number")
        check = f.metadata.get("check")
        if check is not None and not check.ok(value):
            what = check.describe()
            raise s.bad(f.name, f"must be {'a finite number ' if typ is float else ''}{what}"
                        if isinstance(check, Interval) else f"must be {what}")
    s.check()


def describe_settings(cls: type[Settings], profiles: Sequence[str] | None = None) -> list[tuple[str, str, dict]]:
    """(name, doc, {profile: value}) of every field: the settings table of ``--help`` and the docs."""
    names = list(profiles or cls.PROFILES)
    rows = []
    for key, f in cls.fields().items():
        if key == "profile":
            continue
        values = {p: cls.PROFILES[p].get(key, f.default) for p in names}
        rows.append((key, str(f.metadata.get("doc") or ""), values))
    return rows


__all__ = ["DEFAULT_PROFILE", "Settings", "SettingsError", "setting", "Interval", "Options", "Each", "validate", "coerce",
           "describe_settings", "POSITIVE", "NON_NEGATIVE", "AT_LEAST_ONE", "FRACTION"]
