"""What every deep fold task needs: its device and threads, and model inputs built once per worker.

Inputs that depend only on the data and a few settings (segment images, low-level segment
sequences) are built once per worker process and reused by every fold and run that asks
for the same ones (a small memo keyed by the data's fingerprint), so a run's folds, or a
grid's N = 1..5 runs, do not resize the same log-mel again in each task.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from serbench.errors import SerbenchError

if TYPE_CHECKING:
    import numpy as np

    from serbench.experiments.dataset import Dataset
    from serbench.experiments.harness import FoldContext

#: Built inputs kept per worker (segment tensors of a few N at once).
_MEMO_SIZE = 2
_MEMO: "OrderedDict[tuple, Any]" = OrderedDict()


class DeviceError(SerbenchError):
    """A device that is not available here."""


def resolve_device(device: str = "auto"):
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is an error naming --device."""
    import torch

    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise DeviceError(f"--device {device!r}: choose auto, cpu or cuda")
    return torch.device(name)


@dataclass
class Runtime:
    """The torch device, mixed precision and CPU threads of one fold task."""

    device: Any
    amp: bool
    threads: int

    @classmethod
    def of(cls, ctx: FoldContext, amp: bool) -> "Runtime":
        import torch

        if ctx.threads and torch.get_num_threads() != int(ctx.threads):
            torch.set_num_threads(int(ctx.threads))
        dev = resolve_device(ctx.device)
        return cls(device=dev, amp=bool(amp and dev.type == "cuda"), threads=torch.get_num_threads())


def _memo(key: tuple, build: Callable[[], Any]) -> Any:
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    value = build()
    _MEMO[key] = value
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return value


def _data_device(dev, nbytes: int):
    """``dev`` if ``nbytes`` fit in half of its free memory, else the CPU (batches are then copied)."""
    import torch

    if dev.type != "cuda":
        return dev
    free, _ = torch.cuda.mem_get_info(dev)
    return dev if nbytes <= free // 2 else torch.device("cpu")


def image_context(s: Any) -> int:
    """Pixels of neighbouring frames on each side of a segment image: ``cnn_time_shift`` x ``image_size``."""
    return int(round(float(getattr(s, "cnn_time_shift", 0.0)) * int(s.image_size)))


def segment_images(data: Dataset, s: Any, rt: Runtime):
    """``(U*N, 3, S, S + 2 * image_context(s))`` raw segment images of every utterance of ``data``
    (utterance-major; the centre ``S`` columns are the segments).

    Resized once (deterministic; nothing is fitted), on the task's device; kept there when
    they fit in half its free memory.
    """
    from serbench.deep import data as D

    n, size, context = int(s.segments), int(s.image_size), image_context(s)

    def build():
        store = _data_device(rt.device, len(data) * n * 3 * size * (size + 2 * context) * 4)
        return D.segment_tensor(list(data.inputs), n, size, device=rt.device, store=store, context=context)

    return _memo(("images", data.fingerprint, n, size, context, str(rt.device)), build)


def lowlevel(data: Dataset, s: Any, rt: Runtime):
    """``(U, N, 360)`` per-segment log-mel mean and std of every utterance (the ``sru`` ablation's input)."""
    from serbench.deep import data as D

    n = int(s.segments)
    return _memo(("lowlevel", data.fingerprint, n, str(rt.device)),
                 lambda: D.lowlevel_sequences(list(data.inputs), n).to(rt.device))


def segment_rows(utts: np.ndarray, n: int):
    """Utterance positions ``(U,)`` -> their segment rows ``(U*N,)`` in the utterance-major image tensor."""
    import numpy as np
    import torch

    return torch.as_tensor((np.asarray(utts, dtype=np.int64)[:, None] * n + np.arange(n)).ravel(), dtype=torch.long)


def hook(ctx: FoldContext) -> Callable[[dict], None] | None:
    """The client's per-epoch callback (in-process runs only)."""
    return ctx.on_epoch


def curve(history: list[dict]) -> list[dict]:
    """A stage's training curve for the run record: epoch, training loss and UA, validation loss and UA
    (when the fold held out validation data), learning rate, and a speaker adversary's training UA."""
    keep = ("epoch", "loss", "ua", "val_loss", "val_ua", "lr", "group_ua")
    return [{k: h[k] for k in keep if k in h and h[k] is not None} for h in history]


def clear_memo() -> None:
    _MEMO.clear()


__all__ = ["Runtime", "resolve_device", "segment_images", "lowlevel", "segment_rows", "hook", "curve",
           "DeviceError", "clear_memo"]
