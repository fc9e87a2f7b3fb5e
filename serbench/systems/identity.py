"""What a run is: its system and the hash of everything that decides its predictions.

Two runs share an identity exactly when they ran the same registered system with the same
resolved settings (the profile resolved into values), on the same feature set (its cache key,
which covers the extractor's version and parameters), under the same protocol, emotions and
seed. The results store keeps runs under a readable name (``cnn-sru-N3``); the identity is what
decides whether a run is "done", whether an interrupted run resumes, and which runs may share a
row of a table.

>>> ident = identity_of(record["config"])                  # doctest: +SKIP
>>> ident.hash, ident.fields["settings"]["segments"]       # doctest: +SKIP
('3f9a0c1e22b7', 3)

Run records written before identities existed (no ``identity`` in their config) get one
computed from their ``config.settings`` the same way: settings the system no longer has are
dropped, settings it gained since take their defaults, and the feature set's cache key, which
such records lack, is taken as the current one (``legacy`` says so). A retired setting
(``Settings.RETIRED``) recorded at its neutral value is dropped from either kind of record, the
stored hash recomputed without it; at another value the run is refused (``Settings.drop_retired``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from serbench.errors import SerbenchError
from serbench.systems import registry
from serbench.systems.settings import DEFAULT_PROFILE, Settings

#: The settings that are not part of what a run computes: the profile is only where values came from.
NOT_IDENTITY = frozenset({"profile"})


@dataclass(frozen=True)
class Identity:
    """A run's identity: ``hash`` (12 hex digits) of ``fields`` (system, settings, feature key, protocol...)."""

    hash: str
    fields: dict = field(hash=False, compare=False)
    legacy: bool = field(default=False, compare=False)

    @property
    def system(self) -> str:
        return str(self.fields.get("system"))

    @property
    def settings(self) -> dict:
        return dict(self.fields.get("settings") or {})


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)


def feature_key(feature: str) -> str | None:
    """The cache key of feature set ``feature`` (None when this install does not know it)."""
    from serbench.features.registry import get_feature_set

    try:
        return str(get_feature_set(feature).key)
    except Exception:  # an unknown or broken feature set: the identity records the name only
        return None


def make_identity(system: str, settings: Mapping[str, Any], *, feature: str | None, feature_key: str | None,
                  protocol: str | None, emotions: Any, seed: int | None, legacy: bool = False) -> Identity:
    """The identity of a run of registered ``system`` with resolved ``settings`` (see the module docstring)."""
    values = {k: v for k, v in settings.items() if k not in NOT_IDENTITY}
    fields = {
        "system": system,
        "settings": json.loads(_canonical(values)),
        "feature": feature,
        "feature_key": feature_key,
        "protocol": protocol,
        "emotions": sorted(str(e) for e in emotions) if emotions else None,
        "seed": int(seed or 0),
    }
    return Identity(_digest(fields), fields, legacy)


def _digest(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest()[:12]


def extend_identity(ident: Identity, **extra: Any) -> Identity:
    """``ident`` with more fields (e.g. a cross-corpus run's ``adapt`` and ``train`` corpus), hash recomputed."""
    fields = {**ident.fields, **json.loads(_canonical(extra))}
    return Identity(_digest(fields), fields, ident.legacy)


def settings_identity(system_name: str, s: Settings, *, protocol: str | None, emotions: Any = None,
                      seed: int = 0) -> Identity:
    """The identity of a run about to start: system ``system_name`` with settings ``s``."""
    system = registry.get(system_name)
    feature = system.feature_set(s)
    return make_identity(system.name, s.as_dict(), feature=feature, feature_key=feature_key(feature),
                         protocol=protocol, emotions=emotions, seed=seed)


def identity_of(config: Mapping[str, Any], *, name: str | None = None) -> Identity | None:
    """The identity of a stored run from its record's ``config`` (None: a system this install does not know).

    A record with an ``identity`` (written by this version) is taken as it is; an older one is
    identified from its settings (see the module docstring), with ``legacy`` set.
    """
    stored = config.get("identity")
    if isinstance(stored, dict) and isinstance(stored.get("hash"), str) and isinstance(stored.get("fields"), dict):
        return _without_retired(Identity(stored["hash"], dict(stored["fields"])), name)
    found = registry.identify(name or "", {"config": dict(config)})
    if found.system is None:
        return None
    system = found.system
    cls = system.settings_class
    fields = cls.fields()
    recorded = cls.drop_retired(dict(config.get("settings") or {}), where=f"run {name or system.name}")
    if not recorded:   # the oldest records: only the settings the stored name encodes
        recorded = dict(found.settings)
    values = {}
    for key, f in fields.items():
        if key in NOT_IDENTITY:
            continue
        values[key] = recorded[key] if key in recorded else _default(f)
    try:
        s = cls(profile=str(recorded.get("profile") or "paper"), **values)
        feature = system.feature_set(s)
        # What a new run records (a settings class may leave an unset setting out, e.g. the SVM's layer).
        values = {k: v for k, v in s.as_dict().items() if k not in NOT_IDENTITY}
    except Exception:   # values an old version accepted and this one does not: identify by the raw values
        feature = str(values.get("feature") or system.inputs)
    inputs = config.get("inputs") or {}
    return make_identity(system.name, values, feature=feature,
                         feature_key=inputs.get("feature_key") or feature_key(feature),
                         protocol=config.get("protocol"), emotions=config.get("emotions"),
                         seed=config.get("seed"), legacy=True)


def _without_retired(ident: Identity, name: str | None) -> Identity:
    """``ident`` without the retired settings at their neutral value (hash recomputed); others refused."""
    try:
        cls = registry.get(ident.system).settings_class
    except SerbenchError:   # a system this install does not know: nothing to retire
        return ident
    settings = ident.settings
    kept = cls.drop_retired(settings, where=f"run {name or ident.system}")
    if kept == settings:
        return ident
    fields = {**ident.fields, "settings": kept}
    return Identity(_digest(fields), fields, ident.legacy)


def _default(f: Any) -> Any:
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:   # type: ignore[misc]
        return f.default_factory()
    return None


def differences(fields: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (value, reference value)}`` for every identity field (settings one by one) that differs.

    Settings are named by their key (``cnn_lr``); the other fields by theirs (``seed``, ``protocol``,
    ``emotions``, ``feature_key``).
    """
    out: dict[str, tuple[Any, Any]] = {}
    mine, ref = dict(fields.get("settings") or {}), dict(reference.get("settings") or {})
    for key in sorted(set(mine) | set(ref)):
        if mine.get(key) != ref.get(key):
            out[key] = (mine.get(key), ref.get(key))
    for key in ("system", "feature", "feature_key", "protocol", "emotions", "seed"):
        if fields.get(key) != reference.get(key):
            out[key] = (fields.get(key), reference.get(key))
    return out


def show_value(value: Any) -> str:
    """A setting's value as a user writes it (``--set key=value``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def describe_differences(diff: Mapping[str, tuple[Any, Any]]) -> str:
    """``"profile values: cnn_lr=0.01 (declared 0.001), seed=1 (declared 0)"``-style text, or ''."""
    return ", ".join(f"{k}={show_value(v)} (declared {show_value(r)})" for k, (v, r) in diff.items())


def default_profile(system_name: str) -> str:
    """The profile a system runs with when none is named: ``fast`` where it has one (never ``paper``)."""
    return registry.get(system_name).settings_class.default_profile()


def reference_identity(stored_name: str, identity: Identity, *, profile: str | None = None,
                       overrides: Mapping[str, Any] | None = None) -> Identity | None:
    """The identity a run named ``stored_name`` has when it follows ``profile`` (default :data:`DEFAULT_PROFILE`)
    and ``overrides``, with the run's own protocol, emotions and seed 0: what its row of a table declares.

    None when the name belongs to no known system or its settings cannot be built.
    """
    found = registry.identify(stored_name, {"config": {"system_type": identity.system}})
    if found.system is None:
        return None
    system = found.system
    named = system.parse_name(stored_name) or {}
    names_keys = {p.key for p in system.naming.prefix + system.naming.suffix}
    values = {**{k: identity.settings.get(k, v) for k, v in named.items() if k in names_keys}, **(overrides or {})}
    prof = profile if profile in system.settings_class.PROFILES else default_profile(system.name)
    try:
        s = system.settings(prof if system.kind == "deep" else None, values)
    except Exception:
        return None
    feature = system.feature_set(s)
    return make_identity(system.name, s.as_dict(), feature=feature,
                         feature_key=identity.fields.get("feature_key") if feature == identity.fields.get("feature")
                         else feature_key(feature),
                         protocol=identity.fields.get("protocol"), emotions=identity.fields.get("emotions"), seed=0)


__all__ = ["Identity", "run_summary", "make_identity", "extend_identity", "settings_identity", "identity_of",
           "differences", "describe_differences", "reference_identity", "default_profile", "DEFAULT_PROFILE", "feature_key", "show_value"]


def run_summary(config: Mapping[str, Any], name: str) -> tuple[str, str]:
    """``(identity hash, what differs from its profile's defaults)`` of a stored run, for listings.

    The hash is marked ``(legacy)`` for records written before identities; the second part names
    the profile of a deep run and every setting, seed or emotion subset that departs from it.
    """
    ident = identity_of(config, name=name)
    if ident is None:
        return "-", "a system this version does not know"
    settings = config.get("settings") or {}
    profile = settings.get("profile") or config.get("profile")
    system = registry.get(ident.system)
    cross = config.get("cross") if isinstance(config.get("cross"), Mapping) else None
    # A cross-corpus run is compared with its system's in-corpus row: what differs is where it trained and how
    # it adapted, said first, then any setting.
    ref = reference_identity(str(cross.get("base") or name) if cross else name, ident, profile=profile)
    parts = [f"trained on {cross.get('train')}, adapt {cross.get('adapt')}"] if cross else []
    parts += [f"profile {profile}"] if system.kind == "deep" and profile else []
    if ref is not None:
        diff = differences(ident.fields, ref.fields)
        parts += [f"{k}={show_value(v)}" for k, (v, _r) in diff.items()
                  if k not in ("feature_key",) and not (cross and k in ("adapt", "protocol", "emotions"))]
    return ident.hash + (" (legacy)" if ident.legacy else ""), ", ".join(parts) or "defaults"
