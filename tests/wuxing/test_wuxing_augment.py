"""Round 4: affine jitter of training images and method 2's decay of C toward its start."""
from dataclasses import replace

import pytest
import torch

import neuroplex as nx
from neuroplex.datasets import load_dataset
from neuroplex.plugins.wuxing.augment import image_side, jitter_images
from neuroplex.plugins.wuxing.rule import WuxingRule
from neuroplex.trainer import Trainer, load_checkpoint


def test_whole_pixel_shift_moves_the_image_and_zero_jitter_is_the_identity():
    x = torch.zeros(3, 64)
    x[:, 3 * 8 + 4] = 1.0
    assert jitter_images(x).equal(x)
    # a shift of at most one pixel moves the centre of mass by at most one pixel per axis
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = jitter_images(x, shift=1.0, generator=gen).reshape(3, 8, 8)
        assert torch.allclose(y.sum((1, 2)), torch.ones(3), atol=1e-5)  # interior pixel: mass kept
        rows, cols = torch.arange(8.0), torch.arange(8.0)
        cy = (y.sum(2) * rows).sum(1)
        cx = (y.sum(1) * cols).sum(1)
        assert torch.all((cy - 3).abs() <= 1 + 1e-5) and torch.all((cx - 4).abs() <= 1 + 1e-5)
    a = jitter_images(x, shift=1.0, generator=torch.Generator().manual_seed(1))
    b = jitter_images(x, shift=1.0, generator=torch.Generator().manual_seed(1))
    assert a.equal(b) and not a.equal(x)


def test_rotation_keeps_a_centred_symmetric_image_and_values_stay_in_range():
    x = torch.zeros(1, 64)
    img = x.view(8, 8)
    img[2:6, 2:6] = 1.0  # centred square: a 90-degree turn maps it onto itself
    gen = torch.Generator().manual_seed(0)
    y = jitter_images(x.expand(50, 64), rotate=15.0, scale=0.1, generator=gen)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 + 1e-6
    assert not torch.allclose(y[0], y[1])
    with pytest.raises(nx.NeuroplexError, match="square"):
        image_side(63)
    with pytest.raises(nx.NeuroplexError, match="square"):
        WuxingRule("digits", layers=[63, 16, 30], out_group=3, aug_shift=0.5)
    with pytest.raises(nx.NeuroplexError, match="aug_shift"):
        WuxingRule("digits", aug_shift=-1.0)


def test_c_decay_pulls_coupling_toward_its_initial_value():
    data = load_dataset("digits")
    x, y = data.x_train[:16], data.y_train[:16]
    moves = []
    for decay in (0.0, 1.0):
        rule = WuxingRule("digits", layers=[64, 16, 30], out_group=3, c_decay=decay)
        rule.init(0, "cpu")
        net = rule.network
        net.C = net.C_init + 0.01  # every link 0.01 above its start
        g = net.coupling_g1(net.forward(x), net.backward(net.targets(y) - net.output(net.forward(x))))
        c = net.C.clone()
        net.update_coupling(g)
        moves.append(net.C - c)
    # the decay term is -eta f_l c_decay (C - C_0) = -eta f_l 0.01 on every link
    assert torch.allclose(moves[1] - moves[0], -0.01 * rule.network.eta_link, atol=1e-6)


def test_augmented_training_resumes_exactly(tmp_path):
    data = load_dataset("digits")
    data = replace(data, x_train=data.x_train[:96], y_train=data.y_train[:96],
                   x_test=data.x_test[:60], y_test=data.y_test[:60])
    kw = dict(batch_size=16, seed=2, progress=False, plot=False)
    opts = dict(layers=[64, 16, 30], out_group=3, aug_shift=0.5, aug_rotate=10.0, c_decay=0.1)
    full = Trainer(WuxingRule("digits", **opts), data, epochs=2, run_dir=tmp_path / "a", **kw)
    full.fit()
    Trainer(WuxingRule("digits", **opts), data, epochs=1, run_dir=tmp_path / "b", **kw).fit()
    resumed = Trainer(WuxingRule("digits", **opts), data, epochs=2, run_dir=tmp_path / "b", resume=True, **kw)
    resumed.fit()
    assert torch.equal(load_checkpoint(tmp_path / "a")["rule"]["net"]["C"],
                       load_checkpoint(tmp_path / "b")["rule"]["net"]["C"])
    plain = Trainer(WuxingRule("digits", layers=[64, 16, 30], out_group=3, c_decay=0.1), data, epochs=2, **kw)
    plain.fit()
    assert full.history[-1]["train_loss"] != plain.history[-1]["train_loss"]  # the jitter is applied
