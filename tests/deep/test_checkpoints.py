"""How often a training stage checkpoints: after the last epoch always, in between by seconds of training."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from serbench.deep.train import CHECKPOINT_ENV, StageConfig, checkpoint_every_s, load_checkpoint, train_stage
from serbench.errors import SerbenchError


def _train(ckpt, on_epoch=None):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    cfg = StageConfig("toy", epochs=4, batch=8, seed=0, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    res = train_stage(model, x, y, cfg, device=torch.device("cpu"), transform=lambda t: t, checkpoint=ckpt,
                      on_epoch=on_epoch)
    return model, res


@pytest.mark.parametrize(("every", "resumed_from"), [("0", 2), ("3600", 0)])
def test_a_killed_stage_resumes_from_its_last_checkpoint(tmp_path, monkeypatch, every, resumed_from):
    monkeypatch.setenv(CHECKPOINT_ENV, every)
    full, _ = _train(tmp_path / "a.pt")
    assert load_checkpoint(tmp_path / "a.pt")["done"]         # the last epoch is always written

    def kill(ev):
        if ev["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b.pt", on_epoch=kill)
    # Every epoch (0 s) leaves epoch 2's checkpoint; an hour between them leaves none, and the stage restarts.
    assert (tmp_path / "b.pt").is_file() == (resumed_from > 0)
    resumed, res = _train(tmp_path / "b.pt")
    assert res.resumed_from == resumed_from
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)


def test_default_interval_and_bad_values(monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert checkpoint_every_s() == 60.0
    monkeypatch.setenv(CHECKPOINT_ENV, "2.5")
    assert checkpoint_every_s() == 2.5
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv(CHECKPOINT_ENV, bad)
        with pytest.raises(SerbenchError, match=CHECKPOINT_ENV + ".*0 or more"):
            checkpoint_every_s()
