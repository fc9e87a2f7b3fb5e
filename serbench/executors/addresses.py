"""Scheduler addresses: checked before anything starts, in one line naming where they came from."""
from __future__ import annotations

import re

from serbench.executors._common import ExecutorError


SCHEDULER_FORMS = "tcp://HOST:PORT (or tls://, ws://, wss://, ucx://; PORT defaults to 8786) or local:N (N >= 1)"
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
_ADDRESS = re.compile(rf"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>{_HOST})(?::(?P<port>\d{{1,5}}))?")


def check_scheduler(address: str, source: str = "--scheduler") -> str:
    """``address`` checked before any work (``tcp://HOST[:PORT]``, ``tls://...``, ``local:N``); returns it stripped.

    ``source`` names where the address came from in the message (``--scheduler``,
    ``$SERBENCH_SCHEDULER``). A bare ``HOST:PORT`` is a tcp address, as Dask reads it.
    """
    text = str(address).strip()
    where = f"{source} {text!r}" if text else f"{source} (empty)"
    if text.lower().startswith("local:") or text.lower() == "local":
        n = text.partition(":")[2].strip()
        if not re.fullmatch(r"[+-]?\d+", n or "x"):
            raise ExecutorError(f"{where}: local:N needs a whole number of workers N >= 1, e.g. local:2; "
                                f"accepted: {SCHEDULER_FORMS}")
        if int(n) < 1:
            raise ExecutorError(f"{where}: local:N needs N >= 1 workers, e.g. local:2; accepted: {SCHEDULER_FORMS}")
        return f"local:{int(n)}"
    m = _ADDRESS.fullmatch(text)
    scheme = (m.group("scheme") or "").lower() if m else text.partition("://")[0].lower() if "://" in text else ""
    if "://" in text and scheme not in _SCHEMES:
        raise ExecutorError(f"{where}: unknown protocol {scheme + '://'!r}; accepted: {SCHEDULER_FORMS}")
    if m is None:
        what = "no host" if "://" in text and not text.partition("://")[2].strip() else "not an address"
        raise ExecutorError(f"{where}: {what}; accepted: {SCHEDULER_FORMS}")
    if not m.group("scheme") and not m.group("port"):
        raise ExecutorError(f"{where}: not an address (a bare name needs a protocol or a port, e.g. "
                            f"tcp://{text}:8786); accepted: {SCHEDULER_FORMS}")
    if m.group("port") is not None and not 0 < int(m.group("port")) < 65536:
        raise ExecutorError(f"{where}: port {m.group('port')} is not in 1-65535; accepted: {SCHEDULER_FORMS}")
    return text


