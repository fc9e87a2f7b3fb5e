"""The executor interface and the in-process executor."""
from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

from serbench.executors._common import ExecutorError, _say


class Executor:
    """Share data, submit tasks naming it, collect results as they complete."""

    name = "executor"
    workers = 1
    #: Called as ``on_lost(future, what)`` (in the thread collecting results) when the worker running a
    #: task died and the task is rerun; ``what`` says which process and how it died. None: a line on stderr.
    on_lost: Callable[[Any, str], None] | None = None
    #: What happens to a lost worker's task, said in the default report.
    rerun_by = "the task is rerun"
    #: Where the default report goes (None: stderr).
    log: Callable[[str], None] | None = None

    def _report_lost(self) -> None:
        """Tell ``on_lost`` (or the log) of every lost task queued in ``self._lost`` as ``(future, what)``."""
        lost = getattr(self, "_lost", None)
        while lost:
            fut, what = lost.popleft()
            if self.on_lost is not None:
                self.on_lost(fut, what)
            else:
                _say(self.log, f"{what} while running a task; {self.rerun_by}")

    def share(self, obj: Any) -> str:
        """Make ``obj`` available to tasks; returns the token to pass to :meth:`submit`."""
        raise NotImplementedError

    def submit(self, fn: Callable, token: str, *args: Any, resources: dict | None = None) -> Any:
        """Run ``fn(shared_object, *args)``; returns a future (``.result()``, ``.done()``)."""
        raise NotImplementedError

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """Yield the futures as their tasks finish (results or exceptions)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; the executor cannot be used afterwards."""

    def describe(self) -> str:
        """One line for logs and run records, e.g. 'local processes (2 workers)'."""
        return self.name

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Deferred:
    """An in-process future: the task runs when its result is first asked for."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self._fn, self._args = fn, args
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        if self._done:
            return
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # stored and re-raised by result(), like a real future
            self._error = exc
        self._done = True
        self._fn = self._args = None  # type: ignore[assignment]  # free the task's memory

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        self._run()
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self) -> BaseException | None:
        self._run()
        return self._error

    def cancel(self) -> bool:
        if self._done:
            return False
        self._done, self._error = True, ExecutorError("cancelled")
        return True


class InProcess(Executor):
    """Tasks run in this process, in submission order, as results are collected."""

    name = "in-process"

    def __init__(self) -> None:
        self._shared: dict[str, Any] = {}
        self._ids = itertools.count()

    def share(self, obj: Any) -> str:
        token = f"shared-{next(self._ids)}"
        self._shared[token] = obj
        return token

    def submit(self, fn: Callable, token: str, *args: Any, resources: dict | None = None) -> _Deferred:
        return _Deferred(fn, (self._shared[token], *args))

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        for fut in list(futures):
            fut._run()
            yield fut


