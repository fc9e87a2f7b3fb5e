"""SRU against a hand-computed reference, AlexNet naming/loading, shapes, a short training run."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from serbench.cli.run_options import parse_sets
from serbench.deep import SRU, AlexNet, PretrainedError, SRUClassifier, cnn_utterance_probs, load_pretrained
from serbench.deep.train import StageConfig, train_stage
from serbench.errors import SerbenchError
from serbench.systems import SettingsError
from serbench.systems.builtin.cnn_sru_settings import CNNSettings
from serbench.systems.builtin.cnn_sru_training import cnn_optimizer

torch.set_num_threads(1)

# torchvision.models.alexnet().state_dict(): names and shapes (written out, not imported).
TORCHVISION_ALEXNET = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def _reference_sru(x, W, Wf, bf, Wr, br, P=None):
    """Equations 3-7, one scalar-free step at a time, written independently of SRU.forward."""
    B, N, _ = x.shape
    H = W.shape[0]
    c = torch.zeros(B, H, dtype=x.dtype)
    hs = []
    for t in range(N):
        xt = x[:, t]
        x_tilde = xt @ W.T
        f = 1 / (1 + torch.exp(-(xt @ Wf.T + bf)))
        r = 1 / (1 + torch.exp(-(xt @ Wr.T + br)))
        c = f * c + (1 - f) * x_tilde
        skip = xt if P is None else xt @ P.T
        hs.append(r * torch.tanh(c) + (1 - r) * skip)
    return torch.stack(hs, 1), c


@pytest.mark.parametrize("d,h", [(4, 4), (5, 3)])
def test_sru_matches_hand_computed_reference(d, h):
    torch.manual_seed(0)
    sru = SRU(d, h, init_std=0.5, init_bias=0.2).double()
    x = torch.randn(2, 4, d, dtype=torch.float64)
    W, Wf, Wr = sru.weight[:h], sru.weight[h:2 * h], sru.weight[2 * h:]
    P = None if sru.highway is None else sru.highway.weight
    ref_h, ref_c = _reference_sru(x, W, Wf, sru.bias_f, Wr, sru.bias_r, P)
    out_h, out_c = sru(x)
    assert out_h.shape == (2, 4, h) and out_c.shape == (2, h)
    torch.testing.assert_close(out_h, ref_h)
    torch.testing.assert_close(out_c, ref_c)
    assert (sru.highway is None) == (d == h)


def test_sru_recurrence_by_hand_one_unit():
    # D = H = 1, numbers worked out by hand: x = (1, 2), W = 0.5, Wf = Wr = 0, b = 0
    # -> f = r = 0.5; c1 = 0.5*0 + 0.5*0.5 = 0.25; c2 = 0.5*0.25 + 0.5*1.0 = 0.625;
    #    h_t = 0.5*tanh(c_t) + 0.5*x_t.
    sru = SRU(1, 1)
    with torch.no_grad():
        sru.weight.copy_(torch.tensor([[0.5], [0.0], [0.0]]))
        sru.bias_f.zero_()
        sru.bias_r.zero_()
    h, c = sru(torch.tensor([[[1.0], [2.0]]]))
    expect_c = torch.tensor([0.25, 0.625])
    expect_h = 0.5 * torch.tanh(expect_c) + 0.5 * torch.tensor([1.0, 2.0])
    torch.testing.assert_close(h[0, :, 0], expect_h)
    torch.testing.assert_close(c[0, 0], expect_c[1])


def test_sru_passes_gradients():
    torch.manual_seed(1)
    model = SRUClassifier(6, 3, hidden=5, init_std=0.3)
    x = torch.randn(4, 5, 6, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # The first step influences the last state through the recurrence.
    assert x.grad[:, 0].abs().sum() > 0


def test_alexnet_names_and_shapes_match_torchvision(tv_state):
    sd = tv_state
    assert {k: tuple(v.shape) for k, v in sd.items()} == TORCHVISION_ALEXNET


@pytest.fixture(scope="module")
def tv_state():
    """A torchvision-named state dict from a freshly initialized AlexNet (built once: 61M parameters)."""
    torch.manual_seed(3)
    return AlexNet(1000).state_dict()


def _torchvision_style_file(path, tv_state, *, num_classes=1000, drop=None, reshape=None):
    sd = dict(tv_state)
    if num_classes != 1000:
        sd["classifier.6.weight"] = torch.randn(num_classes, 4096) * 0.01
        sd["classifier.6.bias"] = torch.zeros(num_classes)
    if drop:
        sd.pop(drop)
    if reshape:
        sd[reshape] = torch.zeros(7, 7)
    torch.save(dict(sd), path)
    return sd


def test_load_pretrained_exactly(tmp_path, tv_state):
    path = tmp_path / "alexnet.pth"
    src = _torchvision_style_file(path, tv_state)
    torch.manual_seed(4)
    model = AlexNet(4)
    info = load_pretrained(model, path, num_classes=4)
    got = model.state_dict()
    for k, v in src.items():
        if not k.startswith("classifier.6."):
            assert torch.equal(got[k], v), k
    assert got["classifier.6.weight"].shape == (4, 4096)
    assert info["head"] == "re-initialized"
    assert model(torch.randn(1, 3, 67, 67)).shape == (1, 4)


def test_load_pretrained_keeps_matching_head(tmp_path, tv_state):
    path = tmp_path / "alexnet4.pth"
    src = _torchvision_style_file(path, tv_state, num_classes=4)
    model = AlexNet(4)
    assert load_pretrained(model, path)["head"] == "loaded"
    assert torch.equal(model.state_dict()["classifier.6.weight"], src["classifier.6.weight"])


@pytest.mark.parametrize("kind", ["missing", "shape"])
def test_load_pretrained_refuses_mismatch(tmp_path, tv_state, kind):
    path = tmp_path / "bad.pth"
    if kind == "missing":
        _torchvision_style_file(path, tv_state, drop="features.3.weight")
    else:
        _torchvision_style_file(path, tv_state, reshape="classifier.4.weight")
    with pytest.raises(PretrainedError, match="classifier.4.weight|features.3.weight") as exc:
        load_pretrained(AlexNet(4), path)
    assert str(path) in str(exc.value)


def test_load_pretrained_refuses_width_pickles_and_missing_files(tmp_path):
    with pytest.raises(PretrainedError, match="no such file"):
        load_pretrained(AlexNet(4), tmp_path / "nope.pth")
    path = tmp_path / "a.pth"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(PretrainedError, match="cnn_width=1"):
        load_pretrained(AlexNet(4, width=0.5), path)
    # An arbitrary pickled object is refused by weights_only loading.
    torch.save({"obj": Path("x")}, path)
    with pytest.raises(PretrainedError, match="weights-only"):
        load_pretrained(AlexNet(4), path)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_cnn_sru_shapes(n):
    torch.manual_seed(0)
    cnn = AlexNet(6, width=0.0625)
    head = SRUClassifier(cnn.fc_dim, 6, hidden=8)
    cnn.eval()
    x = torch.randn(2, n, 3, 67, 67)
    assert cnn.fc7(x[:, 0]).shape == (2, cnn.fc_dim) == (2, 256)
    feats = cnn.fc7(x.reshape(2 * n, 3, 67, 67)).reshape(2, n, -1)      # utterance-major, as the cascade does
    assert head(feats).shape == (2, 6)
    probs = cnn_utterance_probs(cnn(x.reshape(2 * n, 3, 67, 67)), n)
    assert probs.shape == (2, 6)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))


def test_alexnet_rejects_too_small_images():
    with pytest.raises(Exception, match="image_size"):
        AlexNet(2, width=0.0625)(torch.randn(1, 3, 40, 40))


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.01), ("adam", 0.001)])
def test_short_training_run_lowers_loss(optimizer, lr):
    # Two classes whose images differ in mean brightness per channel: learnable in a few steps.
    g = torch.Generator().manual_seed(0)
    y = torch.arange(24) % 2
    X = torch.randn(24, 3, 67, 67, generator=g) + (y.float() * 2 - 1)[:, None, None, None] * 0.8
    torch.manual_seed(0)
    cnn = AlexNet(2, width=0.125, dropout=0.0)
    prof = CNNSettings.build("tiny", {"segments": 1, "cnn_optimizer": optimizer, "cnn_lr": lr})
    cfg = StageConfig("cnn", epochs=6, batch=8, seed=0, optimizer=lambda p: cnn_optimizer(p, prof))
    assert type(cfg.optimizer(cnn.parameters())).__name__.lower() == optimizer
    res = train_stage(cnn, X, y, cfg, device=torch.device("cpu"), transform=lambda x: x)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 6
    assert losses[-1] < losses[0] * 0.8, losses


def test_profiles_overrides_and_errors():
    p = CNNSettings.build("fast", {"segments": 3, **parse_sets(["cnn_epochs=3", "amp=off", "cnn_lr=0.01"])})
    assert (p.cnn_epochs, p.amp, p.cnn_lr) == (3, False, 0.01)
    paper = CNNSettings.build("paper", {"segments": 3})
    assert (paper.cnn_lr, paper.dropout, paper.cnn_epochs, paper.cnn_batch, paper.image_size) == (0.001, 0.5, 400, 30, 227)
    assert (paper.sru_lr, paper.sru_hidden, paper.sru_epochs, paper.sru_batch) == (0.001, 4096, 100, 30)
    with pytest.raises(SettingsError, match="--set cnn_epoch: not a setting"):
        CNNSettings.build("fast", {"segments": 3, "cnn_epoch": "3"})
    with pytest.raises(SettingsError, match="--set image_size=32: must be >= 63"):
        CNNSettings.build("fast", {"segments": 3, "image_size": "32"})
    with pytest.raises(SettingsError, match="--profile"):
        CNNSettings.build("huge", {"segments": 3})
    with pytest.raises(SettingsError, match="--segments"):
        CNNSettings.build("fast")
    assert paper.cnn_optimizer == "sgd"
    assert CNNSettings.build("fast", {"segments": 3, "cnn_optimizer": "adam"}).cnn_optimizer == "adam"
    with pytest.raises(SettingsError, match="--set cnn_optimizer=rmsprop: must be one of sgd, adam"):
        CNNSettings.build("fast", {"segments": 3, "cnn_optimizer": "rmsprop"})
    with pytest.raises(SettingsError, match=r"--set cnn_lr=nan: must be a finite number"):
        CNNSettings.build("fast", {"segments": 3, "cnn_lr": "nan"})
    with pytest.raises(SerbenchError, match="key=value"):
        parse_sets(["cnn_epochs"])


def test_build_cnn_takes_width_and_dropout():
    from serbench.deep.models import build_cnn

    cnn = build_cnn(5, width=0.125, dropout=0.25)
    assert cnn.fc_dim == AlexNet(5, width=0.125).fc_dim
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.25 for m in cnn.modules())
    assert cnn(torch.randn(1, 3, 67, 67)).shape == (1, 5)


def test_channels_last_cnn_computes_what_the_plain_one_does():
    from serbench.deep.models import build_cnn
    from serbench.systems.base import load_module, module_tensors

    torch.manual_seed(0)
    plain = build_cnn(4, width=0.125, batchnorm=True, channels_last=False)
    torch.manual_seed(0)
    fast = build_cnn(4, width=0.125, batchnorm=True)
    conv = fast.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        assert torch.equal(a, b), name                        # the same values, another memory order
    x = torch.randn(5, 3, 67, 67, generator=torch.Generator().manual_seed(1))
    plain.eval(), fast.eval()
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.fc7(x), plain.fc7(x), rtol=1e-4, atol=1e-5)
    # Saved weights are C-ordered arrays and load back into a channels-last model unchanged.
    tensors = module_tensors("cnn.", fast)
    assert all(v.flags.c_contiguous for v in tensors.values())
    again = load_module(build_cnn(4, width=0.125, batchnorm=True), tensors, "cnn.", "CNN")
    assert again.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(again(x), fast(x), rtol=0, atol=0)
