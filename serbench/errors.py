"""Exceptions raised by serbench. Every message names the file or option at fault."""
from __future__ import annotations


class SerbenchError(Exception):
    """Base class: the CLI prints these as a one-line error instead of a traceback."""


class AudioError(SerbenchError):
    """An audio file cannot be used: unreadable, empty, or not finite."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CorpusError(SerbenchError):
    """A corpus folder does not match the layout its loader expects."""


class FetchError(SerbenchError):
    """A download or archive is incomplete, corrupt or unsafe."""
