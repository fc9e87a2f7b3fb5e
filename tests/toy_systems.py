"""Systems registered by tests only: importable by name in worker processes (tests put this folder on the path).

* ``toy-mean``: a nearest-class-mean classifier on feature matrices, a few lines, to show what
  registering a system takes;
* ``toy-killer``: the same, but a fold kills its own worker process the first time it runs
  (a marker file in the ``markers`` folder says it already did);
* ``toy-slow``: sleeps ``sleep`` seconds per fold and writes one marker per fold it trains.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serbench.experiments.dataset import FoldOutput
from serbench.systems import Naming, Settings, System, flag, register, setting, text


@dataclass(frozen=True)
class ToySettings(Settings):
    feature: str | None = setting(None, "feature set", flag="--feature")
    shrink: float = setting(0.0, "shrink class means towards the grand mean")
    markers: str = setting("", "folder for the test markers (toy-killer, toy-slow)")
    sleep: float = setting(0.0, "seconds each toy-slow fold sleeps")


class ToyMean(System):
    """Nearest class mean on standardized features."""

    name = "toy-mean"
    kind = "baseline"
    inputs = "features"
    table = "features"
    summary = "nearest class mean (a test system)"
    settings_class = ToySettings
    naming = Naming(prefix=(text("feature"),), suffix=(flag("speaker_norm", "spknorm"),))
    order = 90

    def fit(self, data, rows, s, ctx):
        X = data.inputs[rows]
        mu, sd = X.mean(0), X.std(0) + 1e-9
        Z = (X - mu) / sd
        means = np.stack([Z[data.y[rows] == c].mean(0) if (data.y[rows] == c).any() else np.zeros(Z.shape[1])
                          for c in range(data.n_classes)])
        return {"mu": mu, "sd": sd, "means": (1 - s.shrink) * means}

    def predict(self, model, data, rows, s, ctx):
        Z = (data.inputs[rows] - model["mu"]) / model["sd"]
        d = ((Z[:, None, :] - model["means"][None]) ** 2).sum(-1)
        return FoldOutput(-d)


class ToyKiller(ToyMean):
    name = "toy-killer"

    def fit(self, data, rows, s, ctx):
        marker = Path(s.markers) / f"killed-{ctx.fold}"
        if ctx.fold == sorted(set(data.speakers))[1] and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(data, rows, s, ctx)


class ToySlow(ToyMean):
    name = "toy-slow"

    def fit(self, data, rows, s, ctx):
        time.sleep(s.sleep)
        folder = Path(s.markers)
        (folder / f"trained-{ctx.fold}-{time.time_ns()}").touch()
        return super().fit(data, rows, s, ctx)


def register_all() -> None:
    for cls in (ToyMean, ToyKiller, ToySlow):
        register(cls)
