"""Losses against torch.nn.functional (value and gradient), stability, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from convblocks import nn

from ._helpers import assert_close, t, torch

F = torch.nn.functional


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_cross_entropy_integer_labels_matches_torch(rng):
    logits, labels = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    tl = t(logits, True)
    ref = F.cross_entropy(tl, torch.tensor(labels))
    ref.backward()
    assert abs(value - ref.item()) < 1e-12 * max(1.0, abs(ref.item()))
    assert_close(loss.backward(), tl.grad.numpy())


def test_cross_entropy_one_hot_and_soft_targets_match_torch(rng):
    logits = rng.standard_normal((4, 3))
    probs = rng.random((4, 3))
    probs /= probs.sum(1, keepdims=True)
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, probs)
    tl = t(logits, True)
    ref = F.cross_entropy(tl, t(probs))
    ref.backward()
    assert abs(value - ref.item()) < 1e-12
    assert_close(loss.backward(), tl.grad.numpy())
    labels = np.array([0, 2, 1, 1])
    assert loss.forward(logits, np.eye(3)[labels]) == pytest.approx(
        nn.SoftmaxCrossEntropy().forward(logits, labels), rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_gradient_for_rows_not_summing_to_one(rng, dtype):
    # Rows of weights that do not sum to 1 (scaled or partial label smoothing): the
    # backward must be the derivative of the forward's value, softmax * sum(t) - t, as
    # torch's CrossEntropyLoss; (softmax - t) / N was off by softmax * (sum(t) - 1) / N.
    logits = (rng.standard_normal((4, 5)) * 3).astype(dtype)
    targets = (0.5 * (np.eye(5)[[0, 3, 1, 1]] * 0.9 + 0.02)).astype(dtype)
    targets[2] *= 3.0
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, targets)
    tl = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(tl, torch.tensor(targets))
    ref.backward()
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert abs(value - ref.item()) < tol * max(1.0, abs(ref.item()))
    assert loss.backward().dtype == dtype
    assert_close(loss.backward(), tl.grad.numpy(), tol)
    # a single class: the loss is -t * 0 whatever the logits, so the gradient is 0
    one = nn.SoftmaxCrossEntropy()
    one.forward(np.array([[3.0], [-1.0]]), np.array([[0.5], [2.0]]))
    np.testing.assert_array_equal(one.backward(), 0.0)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], dtype=np.float32)
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, np.array([0, 1]))
    assert np.isfinite(value) and value == pytest.approx(np.log(2) / 2, rel=1e-6)
    g = loss.backward()
    assert g.dtype == np.float32 and np.isfinite(g).all()
    np.testing.assert_allclose(nn.softmax(logits).sum(1), 1.0, rtol=1e-6)


def test_mse_matches_torch(rng):
    out, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = nn.MSE()
    value = loss.forward(out, target)
    to = t(out, True)
    ref = F.mse_loss(to, t(target))
    ref.backward()
    assert abs(value - ref.item()) < 1e-12
    assert_close(loss.backward(), to.grad.numpy())


@pytest.mark.parametrize("targets,match", [
    (np.array([0, 1, 5]), r"\[0, 3\]"),
    (np.array([0, 1]), "3 labels"),
    (np.zeros((3, 5)), "shape"),
    (np.zeros((3, 4, 1)), "integer labels"),
])
def test_cross_entropy_bad_targets(targets, match):
    with pytest.raises(ValueError, match=match):
        nn.SoftmaxCrossEntropy().forward(np.zeros((3, 4)), targets)


def test_backward_before_forward_raises():
    with pytest.raises(ValueError, match="forward first"):
        nn.MSE().backward()


@pytest.mark.parametrize("targets", [np.zeros(2, int), np.zeros((2, 0))])
def test_cross_entropy_without_classes_is_a_clear_error(targets):
    with pytest.raises(ValueError, match=r"outputs \(logits\) must be 2-D \(N, K\) with N >= 1 "
                                         r"and K >= 1 .*got shape \(2, 0\)"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 0)), targets)
