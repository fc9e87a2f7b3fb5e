"""Store names of systems: one declaration per system formats a name and parses it back.

A stored name is ``[prefix-]<system>[-suffix...]``, each part derived from one setting::

    IS10-svm-linear-spknorm        feature prefix, speaker_norm flag
    cnn-sru-xfit3-N5               sru_crossfit number (omitted at 0), segments number
    cnn-sru-fuse75-N3              sru_fuse as a percentage (omitted at 0)
    crnn-mk-nomk-mean              mk_multi_kernel off, summary other than attention

:class:`Naming` holds a system's parts; :meth:`Naming.format` and :meth:`Naming.parse` both
come from them, so a name a system writes is always the name it reads back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Part:
    """One name token from one setting: ``render(value)`` gives the token (None: omitted),
    ``pattern`` matches it (its group ``v``, if any, is the value's text), ``read(text)`` the value;
    ``absent`` is the value when the token is missing."""

    key: str
    render: Callable[[Any], str | None]
    pattern: str
    read: Callable[[str | None], Any]
    absent: Any = None
    optional: bool = True


def flag(key: str, token: str, *, when: bool = True) -> Part:
    """``token`` when ``key`` equals ``when`` (e.g. ``spknorm`` for speaker_norm=True; ``nomk`` for False)."""
    return Part(key, lambda v: token if bool(v) == when else None, re.escape(token),
                lambda _t: when, absent=not when)


def number(key: str, prefix: str, *, omit: int | None = None) -> Part:
    """``<prefix><n>`` (e.g. ``N5``); omitted when the value is ``omit`` (None: always present)."""
    return Part(key, lambda v: None if (v is None or v == omit) else f"{prefix}{int(v)}",
                re.escape(prefix) + r"(?P<v>\d+)", lambda t: int(t) if t is not None else omit,
                absent=omit, optional=omit is not None)


def percent(key: str, prefix: str, *, omit: float | None = None) -> Part:
    """``<prefix><100 x value>`` for a fraction (e.g. ``fuse75`` for 0.75, ``fuse12.5`` for 0.125); omitted
    when the value is ``omit``. Up to eight decimals of a percent, no exponent, so a name reads back as
    the value."""
    def render(v: Any) -> str | None:
        if v is None or v == omit:
            return None
        return prefix + f"{float(v) * 100:.8f}".rstrip("0").rstrip(".")

    return Part(key, render, re.escape(prefix) + r"(?P<v>\d+(?:\.\d+)?)",
                lambda t: round(float(t) / 100, 10) if t is not None else omit,
                absent=omit, optional=omit is not None)


def word(key: str, choices: Sequence[str], *, omit: str | None = None) -> Part:
    """The value itself when it is one of ``choices`` other than ``omit`` (e.g. ``mean`` for summary)."""
    shown = [c for c in choices if c != omit]
    return Part(key, lambda v: None if v == omit else str(v), "(?P<v>" + "|".join(map(re.escape, shown)) + ")",
                lambda t: t if t is not None else omit, absent=omit, optional=omit is not None)


def text(key: str) -> Part:
    """A free token before the system name (e.g. the feature set of a baseline: ``IS10``, ``wavlm-base-plus``)."""
    return Part(key, lambda v: str(v), r"(?P<v>.+?)", lambda t: t, optional=False)


@dataclass(frozen=True)
class Naming:
    """The parts of a system's stored names: ``prefix`` before the system name, ``suffix`` after, in order."""

    prefix: tuple[Part, ...] = ()
    suffix: tuple[Part, ...] = ()

    def format(self, system: str, settings: Any) -> str:
        """The stored name of ``system`` with ``settings`` (any object with the parts' attributes)."""
        tokens = [p.render(getattr(settings, p.key)) for p in self.prefix]
        tokens.append(system)
        tokens += [p.render(getattr(settings, p.key)) for p in self.suffix]
        return "-".join(t for t in tokens if t)

    def _regex(self, system: str) -> re.Pattern:
        def group(i: int, part: Part, before: bool) -> str:
            inner = part.pattern.replace("(?P<v>", f"(?P<v{i}>")
            token = f"(?P<t{i}>{inner})"
            token = f"{token}-" if before else f"-{token}"
            return f"(?:{token})?" if part.optional else token

        parts = list(self.prefix) + list(self.suffix)
        pre = "".join(group(i, p, True) for i, p in enumerate(self.prefix))
        post = "".join(group(len(self.prefix) + i, p, False) for i, p in enumerate(self.suffix))
        del parts
        return re.compile(f"^{pre}{re.escape(system)}{post}$")

    def parse(self, system: str, name: str) -> dict[str, Any] | None:
        """The settings a stored ``name`` encodes, or None when ``name`` is not one of ``system``'s."""
        m = self._regex(system).match(name)
        if m is None:
            return None
        out: dict[str, Any] = {}
        for i, part in enumerate(list(self.prefix) + list(self.suffix)):
            if m.group(f"t{i}") is None:
                out[part.key] = part.absent
            else:
                value_text = m.groupdict().get(f"v{i}")
                out[part.key] = part.read(value_text)
        return out


MEMBER = "-m"


def member_stage(stage: str, member: int) -> str:
    """The name of a training stage of ensemble member ``member``: the stage itself for the first, so a
    single model keeps its stage names (and the seeds and checkpoints drawn from them); ``cnn-m1`` etc. after."""
    return f"{stage}{MEMBER}{member}" if member else stage


def stage_family(stage: str) -> str:
    """The stage an ensemble member's stage belongs to (``cnn-m2`` -> ``cnn``; others unchanged)."""
    head, sep, tail = stage.rpartition(MEMBER)
    return head if sep and head and tail.isdigit() else stage


__all__ = ["Naming", "Part", "flag", "number", "percent", "word", "text", "member_stage", "stage_family"]
