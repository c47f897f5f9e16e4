"""Sequential: building, training (overfit, determinism, resume), callbacks, errors,
and a whole network's training step against the same network in PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convblocks import load_model, nn
from convblocks.nn import model as nn_model

from ._helpers import assert_close, hwio_to_oihw, t, torch


def small_cnn(seed=0, dropout=0.0, data_format="NHWC", input_shape=(8, 8, 1), dtype="float32"):
    return nn.Sequential([
        nn.Conv2D(8, 3, padding="same", data_format=data_format),
        nn.BatchNorm2D(data_format=data_format), nn.ReLU(),
        nn.MaxPool2D(2, data_format=data_format), nn.Flatten(), nn.Dropout(dropout),
        nn.Dense(16), nn.ReLU(), nn.Dense(4)], input_shape=input_shape, seed=seed, dtype=dtype)


def data(n=64, seed=0, shape=(8, 8, 1)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, 4, n)


def test_tiny_model_overfits_64_examples():
    x, y = data()
    model = small_cnn()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam(lr=3e-3))
    history = model.fit(x, y, epochs=60, batch_size=16, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] == 1.0
    assert model.evaluate(x, y)["accuracy"] == 1.0
    # float32 throughout: no Python-float or float64 constant upcast anything.
    assert all(p.dtype == np.float32 for p in model.params().values())
    assert all(g.dtype == np.float32 for g in model.grads().values())
    assert all(b.dtype == np.float32 for b in model.buffers().values())
    assert all(s.dtype == np.float32 for k, s in model.optimizer.state_dict().items()
               if k != "iterations")
    assert model.forward(x[:2]).dtype == np.float32


def test_same_seed_same_weights_and_losses():
    x, y = data()
    runs = []
    for _ in range(2):
        model = small_cnn(seed=3, dropout=0.3)
        model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(0.05, momentum=0.9))
        runs.append((model.fit(x, y, epochs=2, batch_size=16, seed=11)["loss"], model))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1].params().values(), runs[1][1].params().values()):
        np.testing.assert_array_equal(a, b)
    other = small_cnn(seed=4)
    assert not np.array_equal(other.params()["0.kernel"], runs[0][1].params()["0.kernel"])


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    x, y = data(48)
    xv, yv = data(16, seed=1)

    def compiled(model):
        model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.AdamW(3e-3),
                      schedule=nn.CosineSchedule(total_steps=9), clip_norm=5.0)
        return model

    class Checkpoint:
        def __init__(self, model):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            self.model.save(tmp_path / f"ep{epoch}.npz", extra={"epoch": epoch})

    full = compiled(small_cnn(seed=1, dropout=0.25))
    h_full = full.fit(x, y, epochs=3, batch_size=16, seed=5, validation_data=(xv, yv),
                      callbacks=[Checkpoint(full)])
    resumed = load_model(tmp_path / "ep0.npz")
    assert resumed.extra == {"epoch": 0} and resumed.optimizer.iterations == 3
    h_res = resumed.fit(x, y, epochs=3, batch_size=16, seed=5, validation_data=(xv, yv),
                        initial_epoch=1)
    assert h_res["loss"] == h_full["loss"][1:]
    assert h_res["val_loss"] == h_full["val_loss"][1:]
    for key, p in full.params().items():
        np.testing.assert_array_equal(p, resumed.params()[key], err_msg=key)
    for key, b in full.buffers().items():
        np.testing.assert_array_equal(b, resumed.buffers()[key], err_msg=key)


def _compiled_for_resume(model):
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.AdamW(3e-3),
                  schedule=nn.CosineSchedule(total_steps=12), clip_norm=5.0)
    return model


def _assert_same_state(a, b):
    for name in ("params", "buffers"):
        for key, value in getattr(a, name)().items():
            np.testing.assert_array_equal(value, getattr(b, name)()[key], err_msg=key)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


class _StopAt:
    """Raises StopTraining after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        self.at, self.epoch, self.ended = (epoch, batch), None, False

    def on_epoch_begin(self, epoch, logs):
        self.epoch = epoch

    def on_batch_end(self, batch, logs):
        if (self.epoch, batch) == self.at:
            raise nn_model.StopTraining

    def on_train_end(self, logs):
        self.ended = True


# 56 examples at batch 16: 4 batches per epoch, the last one of 8. (0, 1): the middle of
# the first epoch; (1, 3): after the last batch, before the epoch's end; (2, 0): the
# first batch of the last epoch.
@pytest.mark.parametrize("stop_epoch, stop_batch", [(0, 1), (1, 3), (2, 0)])
def test_stop_mid_epoch_then_resume_is_bit_identical(tmp_path, stop_epoch, stop_batch):
    x, y = data(56)
    xv, yv = data(16, seed=1)
    kw = dict(epochs=3, batch_size=16, seed=5, validation_data=(xv, yv))
    full = _compiled_for_resume(small_cnn(seed=1, dropout=0.25))
    h_full = full.fit(x, y, **kw)
    assert full.epoch_state is None

    cut = _compiled_for_resume(small_cnn(seed=1, dropout=0.25))
    stopper = _StopAt(stop_epoch, stop_batch)
    h_cut = cut.fit(x, y, callbacks=[stopper], **kw)
    assert stopper.ended and len(h_cut.get("loss", [])) == stop_epoch  # the stopped epoch: no entry
    state = cut.epoch_state
    assert {k: state[k] for k in ("epoch", "batch", "batches", "seed", "examples",
                                  "batch_size", "shuffle")} == {
        "epoch": stop_epoch, "batch": stop_batch + 1, "batches": 4, "seed": 5,
        "examples": 56, "batch_size": 16, "shuffle": True}
    assert state["seen"] == min(16 * (stop_batch + 1), 56)
    assert cut.optimizer.iterations == 4 * stop_epoch + stop_batch + 1
    cut.save(tmp_path / "cut.npz", extra={"state": state})  # through JSON and back

    resumed = load_model(tmp_path / "cut.npz")
    state = resumed.extra["state"]
    h_res = resumed.fit(x, y, initial_epoch=state["epoch"], initial_batch=state["batch"],
                        epoch_state=state, **kw)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert h_cut.get(key, []) + h_res[key] == h_full[key], key
    _assert_same_state(full, resumed)
    assert resumed.epoch_state is None


def test_epoch_state_between_epochs_and_during_fit():
    x, y = data(40)
    model = small_cnn(dropout=0.5)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    seen = []

    class Probe:
        def on_epoch_begin(self, epoch, logs):
            assert logs == {"initial_batch": 0, "seen": 0}

        def on_batch_end(self, batch, logs):
            state = model.epoch_state
            seen.append((state["epoch"], state["batch"], state["seen"]))

        def on_epoch_end(self, epoch, logs):
            assert model.epoch_state is None  # the epoch is complete
            raise nn_model.StopTraining

    history = model.fit(x, y, epochs=3, batch_size=16, seed=0, callbacks=[Probe()])
    assert seen == [(0, 1, 16), (0, 2, 32), (0, 3, 40)]
    assert len(history["loss"]) == 1 and model.epoch_state is None

    class Boom:
        def on_batch_end(self, batch, logs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=1, batch_size=16, callbacks=[Boom()])
    assert model.epoch_state is None  # only StopTraining leaves a position


def test_resume_mid_epoch_takes_the_states_seed_and_refuses_mismatches():
    x, y = data(40)
    model = _compiled_for_resume(small_cnn(dropout=0.25))
    model.fit(x, y, epochs=2, batch_size=16, seed=3, callbacks=[_StopAt(0, 0)])
    state = model.epoch_state
    iterations = model.optimizer.iterations
    before = {k: v.copy() for k, v in model.params().items()}
    bad_calls = [
        (dict(initial_batch=1), "initial_batch=1 needs epoch_state"),
        (dict(initial_batch=2, epoch_state=state), "batch=1 but this call has initial_batch 2"),
        (dict(initial_batch=1, epoch_state=state, batch_size=8),
         "batch_size=16 but this call has batch_size 8"),
        (dict(initial_batch=1, epoch_state=state, seed=4), "seed=3 but this call has seed 4"),
        (dict(initial_batch=1, epoch_state=state, shuffle=False), "shuffle=True"),
        (dict(initial_batch=1, epoch_state=state, epochs=0), "leaves nothing to run"),
        (dict(initial_batch=1, epoch_state={**state, "dropout_rng": {"state": 1}}),
         "not a PCG64 generator state"),
        (dict(initial_batch=1, epoch_state={**state, "seen": -1}), "must be an int >= 0"),
        (dict(initial_batch=1, epoch_state={k: v for k, v in state.items() if k != "correct"}),
         "lacks ['correct']"),
    ]
    for kwargs, message in bad_calls:
        kw = {"epochs": 2, "batch_size": 16, **kwargs}
        with pytest.raises(ValueError, match=re.escape(message)):
            model.fit(x[:40], y[:40], **kw)
    with pytest.raises(ValueError, match="examples=40 but this call has examples in x 32"):
        model.fit(x[:32], y[:32], epochs=2, batch_size=16, initial_batch=1, epoch_state=state)
    assert model.optimizer.iterations == iterations  # refused calls changed nothing
    for key, value in before.items():
        np.testing.assert_array_equal(value, model.params()[key])

    full = _compiled_for_resume(small_cnn(dropout=0.25))
    h_full = full.fit(x, y, epochs=2, batch_size=16, seed=3)
    h = model.fit(x, y, epochs=2, batch_size=16, initial_batch=1, epoch_state=state)  # seed 3
    assert h["loss"] == h_full["loss"] and h["val_loss"] == h_full["val_loss"]
    _assert_same_state(full, model)


def test_callbacks_logs_and_stop_training():
    x, y = data(40)
    model = small_cnn()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    events = []

    class Recorder:
        def on_train_begin(self, logs):
            events.append(("train_begin",))

        def on_epoch_begin(self, epoch, logs):
            events.append(("epoch_begin", epoch))

        def on_batch_end(self, batch, logs):
            events.append(("batch", batch, logs["batch_size"]))
            assert set(logs) == {"loss", "accuracy", "batch_size"}

        def on_epoch_end(self, epoch, logs):
            events.append(("epoch_end", epoch))
            assert {"loss", "accuracy", "val_loss", "val_accuracy", "time",
                    "images_per_s"} <= set(logs)
            if epoch == 1:
                model.stop_training = True

        def on_train_end(self, logs):
            events.append(("train_end",))

    history = model.fit(x, y, epochs=5, batch_size=16, validation_data=(x, y),
                        callbacks=[Recorder()])
    assert events[:5] == [("train_begin",), ("epoch_begin", 0), ("batch", 0, 16),
                          ("batch", 1, 16), ("batch", 2, 8)]
    assert events[-2:] == [("epoch_end", 1), ("train_end",)]
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    h = model.fit(x, y, epochs=1, batch_size=8, steps_per_epoch=2)
    assert h["images_per_s"][0] > 0 and model.optimizer.iterations == 3 * 2 + 2


def test_predict_evaluate_and_uint8_input():
    x, y = data(20)
    model = small_cnn()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    p = model.predict(x, batch_size=7)
    assert p.shape == (20, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    ev = model.evaluate(x, y, batch_size=6)
    assert ev["accuracy"] == np.mean(p.argmax(1) == y)
    logits = model.predict(x, batch_size=7, raw=True)  # the network's outputs, batch by batch
    np.testing.assert_allclose(logits, model.forward(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.losses.softmax(logits), p, rtol=1e-6)
    with pytest.raises(TypeError, match="raw must be True or False; got 1"):
        model.predict(x, raw=1)
    xi = (np.abs(x) * 50).astype(np.uint8)
    assert model.predict(xi).dtype == np.float32
    model.fit(xi, y, epochs=1, batch_size=10)
    assert model.params()["0.kernel"].dtype == np.float32


def test_summary_counts_parameters():
    model = small_cnn()
    text = model.summary()
    expected = (3 * 3 * 8 + 8) + 16 + (128 * 16 + 16) + (16 * 4 + 4)
    assert model.num_params == expected
    assert f"Total params: {expected:,}" in text
    assert "(None, 4, 4, 8)" in text and "conv2d_0 (Conv2D)" in text


def test_lazy_build_and_shape_errors():
    model = nn.Sequential([nn.Conv2D(2, 3), nn.Flatten(), nn.Dense(3)], seed=0)
    assert not model.built
    model.forward(np.zeros((1, 5, 5, 1)))
    assert model.input_shape == (5, 5, 1) and model.output_shape == (3,)
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D 'conv2d_0'\) expects x of shape "
                                         r"\(N, 5, 5, 1\); got \(2, 5, 5, 3\)"):
        model.forward(np.zeros((2, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"layer 1 \(Dense 'dense_1'\) cannot take input of shape \(N, 3, 3, 2\)"):
        nn.Sequential([nn.Conv2D(2, 3), nn.Dense(3)], input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match="compile"):
        model.fit(np.zeros((2, 5, 5, 1)), np.zeros(2, dtype=int))
    with pytest.raises(TypeError, match="optimizer"):
        model.compile(loss=nn.MSE(), optimizer="adam")
    with pytest.raises(ValueError, match="one target per example"):
        model.compile(loss=nn.MSE(), optimizer=nn.SGD())
        model.fit(np.zeros((2, 5, 5, 1)), np.zeros(3))


@pytest.mark.torch
def test_nchw_network_training_step_matches_torch():
    """Conv-BN-ReLU-MaxPool-Flatten-Dense in NCHW float64: one SGD step == torch's."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 2, 6, 6)), rng.integers(0, 3, 6)
    model = nn.Sequential([nn.Conv2D(4, 3, padding=1, data_format="NCHW"),
                           nn.BatchNorm2D(data_format="NCHW"), nn.ReLU(),
                           nn.MaxPool2D(2, data_format="NCHW"), nn.Flatten(), nn.Dense(3)],
                          input_shape=(2, 6, 6), seed=0, dtype="float64")
    ref = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                              torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(36, 3)).double()
    with torch.no_grad():
        ref[0].weight[...] = t(model.layers[0].params["kernel"])
        ref[0].bias[...] = t(model.layers[0].params["bias"])
        ref[5].weight[...] = t(model.layers[5].params["kernel"].T)
        ref[5].bias[...] = t(model.layers[5].params["bias"])
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(0.1, momentum=0.9))
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        loss, _ = model.train_step(x, y)
        opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(ref(t(x)), torch.tensor(y))
        ref_loss.backward()
        opt.step()
        assert abs(loss - ref_loss.item()) < 1e-10
    assert_close(model.layers[0].params["kernel"], ref[0].weight.detach().numpy())
    assert_close(model.layers[5].params["kernel"], ref[5].weight.detach().numpy().T)
    assert_close(model.layers[1].buffers["running_var"], ref[1].running_var.numpy())
    ref.eval()
    assert_close(model.forward(x), ref(t(x)).detach().numpy())


def test_nhwc_kernel_layout_is_hwio():
    model = small_cnn()
    assert model.layers[0].params["kernel"].shape == (3, 3, 1, 8)
    assert hwio_to_oihw(model.layers[0].params["kernel"]).shape == (8, 1, 3, 3)


def test_whole_model_input_gradient_by_central_differences():
    """model.backward(dy, input_grad=True) through Conv-BN-ReLU-Pool-Dense (float64)."""
    from convblocks import gradcheck

    model = nn.Sequential([nn.Conv2D(3, 3, padding=1), nn.BatchNorm2D(), nn.LeakyReLU(0.1),
                           nn.AvgPool2D(2), nn.ConvTranspose2D(2, 2, stride=2),
                           nn.GlobalMaxPool2D(), nn.Dense(3)],
                          input_shape=(4, 4, 2), seed=0, dtype="float64")
    x = np.random.default_rng(1).standard_normal((3, 4, 4, 2))
    res = gradcheck(lambda x_: model.forward(x_, training=True), (x,),
                    lambda dy: (model.backward(dy, input_grad=True),))
    assert res.max_rel_error < 1e-6, res
    assert model.layers[0].needs_input_grad
    model.backward(np.ones((3, 3)))
    assert not model.layers[0].needs_input_grad


# ----------------------------------------------- ReLU + MaxPool2D run pool first
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=1, ceil_mode=True)])
def test_relu_then_max_pool_runs_reordered_with_identical_results(data_format, pool):
    """Sequential runs (ReLU, MaxPool2D) as pool-then-ReLU: every value and gradient must
    equal the layer-by-layer order bit for bit, ties, all-negative windows and NaN included."""
    def layers():
        return [nn.Conv2D(6, 3, padding="same", data_format=data_format),
                nn.ReLU(), nn.MaxPool2D(**pool, data_format=data_format),
                nn.ReLU(), nn.MaxPool2D(2, data_format=data_format, ceil_mode=True),
                nn.Flatten(), nn.Dense(3)]

    shape = (9, 9, 2) if data_format == "NHWC" else (2, 9, 9)
    model = nn.Sequential(layers(), input_shape=shape, seed=3)
    plain = nn.Sequential(layers(), input_shape=shape, seed=3)  # the same weights
    rng = np.random.default_rng(0)
    for with_nan in (False, True):
        x = rng.standard_normal((5, *shape)).round(1)  # rounding makes ties
        x[0] = -np.abs(x[0])  # windows with nothing positive
        if with_nan:
            x[1, 1, 2] = np.nan
        y = model.forward(x, training=True)
        h = x
        for layer in plain.layers:  # the order as written
            h = layer.forward(h, training=True)
        np.testing.assert_array_equal(y, h)
        # the ReLUs ran after their pools: their outputs have the pooled shape
        assert model.layers[1]._y_shape == model.layers[2]._y_shape != plain.layers[1]._y_shape
        assert model.layers[3]._y_shape == model.layers[4]._y_shape
        dy = rng.standard_normal(y.shape)
        dx = model.backward(dy, input_grad=True)
        g = dy
        for layer in reversed(plain.layers):
            g = layer.backward(g)
        np.testing.assert_array_equal(dx, g)
        for k, grad in model.grads().items():
            np.testing.assert_array_equal(grad, plain.grads()[k], err_msg=k)
        assert np.isnan(y[1]).all() == with_nan and not np.isnan(y[2:]).any()


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=(1, 2)),
                                  dict(kernel_size=3, stride=2, padding=1)])
def test_relu_then_max_pool_reordered_is_bit_exact_for_non_finite_and_negative_dy(
        data_format, pool):
    """With NaN, infinite and negative upstream gradients the reordered pair gives the
    written order's dx bit for bit (NaN only where a window sent it, +0.0 elsewhere)."""
    shape = (6, 8, 5) if data_format == "NHWC" else (5, 6, 8)
    model = nn.Sequential([nn.ReLU(), nn.MaxPool2D(**pool, data_format=data_format)],
                          input_shape=shape, dtype="float64")
    relu, mp = nn.ReLU(), nn.MaxPool2D(**pool, data_format=data_format)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, *shape)).round(1)
    y = model.forward(x, training=True)
    np.testing.assert_array_equal(y, mp.forward(relu.forward(x, training=True), training=True))
    dy = rng.standard_normal(y.shape)
    flat = dy.reshape(-1)
    flat[::4], flat[1::9], flat[2::7] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        dx = model.backward(dy, input_grad=True)
        written = relu.backward(mp.backward(dy))
    np.testing.assert_array_equal(dx.view(np.int64), written.view(np.int64))
    assert np.isnan(dx).sum() < np.isnan(dy).sum() * 2  # NaN stays at the argmaxes


def test_relu_then_dilated_max_pool_keeps_the_written_order():
    """A dilated window can lie wholly in the -inf padding (input height 1, kernel 2,
    dilation 2, padding 1): its output is -inf, which pool-then-ReLU would turn into 0.
    Such pairs run as written."""
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 1))
    layers = [nn.ReLU(), nn.MaxPool2D(2, stride=1, padding=1, dilation=2)]
    model = nn.Sequential(layers, input_shape=(1, 4, 1))
    y = model.forward(x, training=True)
    h = x
    for layer in [nn.ReLU(), nn.MaxPool2D(2, stride=1, padding=1, dilation=2)]:
        h = layer.forward(h, training=True)
    assert np.isneginf(y).any()
    np.testing.assert_array_equal(y, h)


# ------------------------------------------------------- bad input, checked up front
def _snapshot(model):
    return ({k: p.copy() for k, p in model.params().items()},
            {k: b.copy() for k, b in model.buffers().items()},
            {k: np.array(v, copy=True) for k, v in model.optimizer.state_dict().items()},
            model._rng.bit_generator.state)


def _assert_unchanged(model, snap):
    params, buffers, opt_state, rng_state = snap
    for key, p in model.params().items():
        np.testing.assert_array_equal(p, params[key], err_msg=key)
    for key, b in model.buffers().items():
        np.testing.assert_array_equal(b, buffers[key], err_msg=key)
    state = model.optimizer.state_dict()
    assert state.keys() == opt_state.keys()
    for key, value in opt_state.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)
    assert model._rng.bit_generator.state == rng_state


def test_fit_checks_every_label_before_the_first_step():
    x, y = data(40)
    model = small_cnn()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    model.fit(x, y, epochs=1, batch_size=16, seed=0)  # optimizer state exists
    snap = _snapshot(model)
    bad = y.copy()
    bad[-1] = 4  # 4 classes: the last batch would be the first to see it
    with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 3\] for the "
                                         r"model's 4 classes; got values in \[0, 4\] "
                                         r"\(shape \(40,\), dtype int64\)"):
        model.fit(x, bad, shuffle=False, batch_size=16)
    _assert_unchanged(model, snap)
    with pytest.raises(ValueError, match=r"^validation_data\[1\] must hold class labels in "
                                         r"\[0, 3\] .* got values in \[5, 8\] \(shape \(40,\)"):
        model.fit(x, y, validation_data=(x, y + 5), epochs=3)
    _assert_unchanged(model, snap)
    with pytest.raises(ValueError, match=r"^y must be integer class labels \(N,\) or one-hot "
                                         r"rows \(N, 4\); got a 1-D array of dtype float64"):
        model.fit(x, y.astype(float))
    with pytest.raises(ValueError, match=r"^y as one-hot/probability rows must have shape "
                                         r"\(N, 4\) for the model's 4 classes; got \(40, 3\)"):
        model.fit(x, np.eye(3)[y % 3])
    with pytest.raises(ValueError, match=r"validation_data\[1\] must have one target per "
                                         r"example of validation_data\[0\] \(40\); got shape "
                                         r"\(39,\)"):
        model.fit(x, y, validation_data=(x, y[:-1]))
    with pytest.raises(ValueError, match=r"expects validation_data\[0\] of shape \(N, 8, 8, 1\); "
                                         r"got \(40, 8, 8\)"):
        model.fit(x, y, validation_data=(x[..., 0], y))
    with pytest.raises(TypeError, match="y must hold float32, float64 or integer"):
        model.fit(x, np.eye(4, dtype=np.float16)[y])
    with pytest.raises(ValueError, match=r"^y must hold class labels"):
        model.evaluate(x, bad)
    _assert_unchanged(model, snap)
    # one-hot targets still train, and the model's input shape is the caller's
    model.fit(x, np.eye(4)[y], epochs=1, batch_size=16)
    assert model.optimizer.iterations == 6


def test_fit_mse_targets_checked_against_the_output_shape():
    x, y = data(10)
    model = small_cnn()
    model.compile(loss=nn.MSE(), optimizer=nn.SGD(0.1))
    snap = _snapshot(model)
    with pytest.raises(ValueError, match=r"^y must have shape \(N, 4\) \(the model's output per "
                                         r"example\) for MSE; got \(10,\)"):
        model.fit(x, y)
    _assert_unchanged(model, snap)
    model.fit(x, np.eye(4)[y], epochs=1, batch_size=5)
    assert model.optimizer.iterations == 2


def test_wrong_input_shape_names_the_callers_shape():
    model = small_cnn()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D 'conv2d_0'\) expects x of shape "
                                         r"\(N, 8, 8, 1\); got \(10, 8, 8\)$"):
        model.fit(np.zeros((10, 8, 8)), np.zeros(10, int))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 8, 8, 1\); got \(7, 8, 8, 2\)$"):
        model.evaluate(np.zeros((7, 8, 8, 2)), np.zeros(7, int))


def test_failed_lazy_build_leaves_the_model_unbuilt():
    def layers():
        return [nn.Conv2D(2, 3), nn.MaxPool2D(4), nn.Flatten(), nn.Dense(3)]

    model = nn.Sequential(layers(), seed=0)
    with pytest.raises(ValueError, match=r"layer 1 \(MaxPool2D 'maxpool2d_1'\) cannot take "
                                         r"input of shape \(N, 3, 3, 2\)"):
        model.predict(np.zeros((1, 5, 5, 1)))
    assert not model.built and not any(layer.built or layer.params for layer in model.layers)
    assert model.predict(np.zeros((2, 10, 10, 1))).shape == (2, 3)
    # the generator was rewound too: the weights are those of a fresh model
    fresh = nn.Sequential(layers(), input_shape=(10, 10, 1), seed=0)
    for key, p in fresh.params().items():
        np.testing.assert_array_equal(model.params()[key], p, err_msg=key)
    # a layer built before it joined the model stays built
    conv = nn.Conv2D(2, 3)
    conv.forward(np.zeros((1, 5, 5, 1)))
    kernel = conv.params["kernel"].copy()
    model = nn.Sequential([conv, nn.MaxPool2D(4), nn.Flatten(), nn.Dense(3)])
    with pytest.raises(ValueError, match="cannot take input"):
        model.build((5, 5, 1))
    assert conv.built and not model.built and not model.layers[3].built
    np.testing.assert_array_equal(conv.params["kernel"], kernel)


@pytest.mark.parametrize("bad", ["no", 1, 0, None, np.array([True])])
def test_training_and_shuffle_must_be_bools(bad):
    x, y = data(8)
    drop = nn.Dropout(0.5)
    with pytest.raises(TypeError, match=r"Dropout: training must be True or False; got"):
        drop.forward(np.ones((2, 100)), training=bad)
    assert not drop.built or drop._y_shape is None
    model = small_cnn()
    with pytest.raises(TypeError, match=r"^training must be True or False"):
        model.forward(x, training=bad)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam())
    snap = _snapshot(model)
    with pytest.raises(TypeError, match=r"^shuffle must be True or False"):
        model.fit(x, y, shuffle=bad)
    _assert_unchanged(model, snap)
    with pytest.raises(TypeError, match=r"^input_grad must be True or False"):
        model.backward(np.ones((8, 4)), input_grad=bad)
    # NumPy's bool is a bool
    assert drop.forward(np.ones((2, 100)), training=np.bool_(False)).sum() == 200
    model.fit(x, y, shuffle=np.bool_(False), batch_size=8)
    assert model.optimizer.iterations == 1


# ------------------------------------------------- training-loop details (mutation gaps)
def _tiny(seed=0):
    return nn.Sequential([nn.Flatten(), nn.Dense(3)], input_shape=(2, 2, 1), seed=seed)


def test_train_step_applies_clip_norm():
    """One SGD step (lr 1) with clip_norm 1e-3 moves the weights by at most 1e-3."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 2, 2, 1)) * 100).astype(np.float32)
    y = np.arange(8) % 3
    model = _tiny()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(lr=1.0), clip_norm=1e-3)
    before = {k: v.copy() for k, v in model.params().items()}
    model.train_step(x, y)
    moved = np.sqrt(sum(np.sum((model.params()[k] - v) ** 2) for k, v in before.items()))
    assert 0 < moved <= 1e-3 * (1 + 1e-5)


def test_the_first_step_uses_the_schedule_at_step_0():
    model = _tiny()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(lr=1.0),
                  schedule=nn.StepSchedule(1, gamma=0.5))
    assert model.current_lr() == 1.0
    model.train_step(np.zeros((2, 2, 2, 1), np.float32), np.array([0, 1]))
    assert model.current_lr() == 0.5


def test_evaluate_loss_is_the_mean_over_every_example():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 2, 2, 1)).astype(np.float32)
    y = np.arange(20) % 3
    model = _tiny()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD())
    result = model.evaluate(x, y, batch_size=7)  # batches of 7, 7, 6
    expected = nn.SoftmaxCrossEntropy().forward(model.forward(x, training=False), y)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_each_epoch_shuffles_differently():
    seen = []
    model = _tiny()
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(lr=0.0))
    step = model.train_step
    model.train_step = lambda xb, yb: (seen.append(yb.copy()), step(xb, yb))[1]
    model.fit(np.zeros((16, 2, 2, 1), np.float32), np.arange(16) % 3, epochs=2,
              batch_size=16, seed=1)
    assert len(seen) == 2 and not np.array_equal(seen[0], seen[1])
