"""Every layer's forward and gradients (input and parameters) against PyTorch in
float64, plus central differences (convblocks.gradcheck) for the layers with parameters."""

from __future__ import annotations

import numpy as np
import pytest

from convblocks import gradcheck, nn
from convblocks.functional import set_num_threads

from ._helpers import (assert_close, hwio_to_oihw, nchw_to_nhwc, nhwc_to_nchw, run_layer, t,
                       torch)

F = torch.nn.functional
pytestmark = pytest.mark.torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _torch_image(x: np.ndarray, data_format: str):
    return t(nhwc_to_nchw(x) if data_format == "NHWC" else x, grad=True)


def _back_to(a, data_format: str) -> np.ndarray:
    a = a.detach().numpy()
    return nchw_to_nhwc(a) if data_format == "NHWC" else a


# ----------------------------------------------------------------------- Conv2D
CONV_CASES = [
    dict(filters=4, kernel_size=3, stride=1, padding=1),
    dict(filters=6, kernel_size=(3, 2), stride=(2, 1), padding=((1, 0), (2, 1)), dilation=1),
    dict(filters=4, kernel_size=3, stride=2, padding=2, dilation=2, groups=2),
    dict(filters=5, kernel_size=1, use_bias=False),
]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("opts", CONV_CASES)
def test_conv2d_matches_torch(opts, data_format, rng):
    c_in = 4
    x = rng.standard_normal((2, 9, 8, c_in) if data_format == "NHWC" else (2, c_in, 9, 8))
    layer = nn.Conv2D(**opts, data_format=data_format)
    if opts.get("use_bias", True):
        layer.build(x.shape[1:], rng=rng, dtype=np.float64)
        layer.params["bias"][...] = rng.standard_normal(opts["filters"])
    y, dy, dx, grads = run_layer(layer, x)
    w = layer.params["kernel"]
    tw = t(hwio_to_oihw(w) if data_format == "NHWC" else w, grad=True)
    tb = t(layer.params["bias"], grad=True) if "bias" in layer.params else None
    tx = _torch_image(x, data_format)
    (pt, pb), (pl, pr) = nn.layers.resolve_padding(
        layer.padding, kernel_size=layer.kernel_size, stride=layer.stride,
        dilation=layer.dilation, in_hw=x.shape[1:3] if data_format == "NHWC" else x.shape[2:])
    ty = F.conv2d(F.pad(tx, (pl, pr, pt, pb)), tw, tb, stride=layer.stride,
                  dilation=layer.dilation, groups=layer.groups)
    ty.backward(t(nhwc_to_nchw(dy) if data_format == "NHWC" else dy))
    assert_close(y, _back_to(ty, data_format), what="y")
    assert_close(dx, _back_to(tx.grad, data_format), what="dx")
    tdw = tw.grad.numpy()
    assert_close(grads["kernel"], tdw.transpose(2, 3, 1, 0) if data_format == "NHWC" else tdw,
                 what="dkernel")
    if tb is not None:
        assert_close(grads["bias"], tb.grad.numpy(), what="dbias")


def test_conv2d_same_padding_matches_torch(rng):
    x = rng.standard_normal((2, 7, 7, 3))
    layer = nn.Conv2D(5, 3, padding="same")
    y, dy, dx, grads = run_layer(layer, x)
    tx = _torch_image(x, "NHWC")
    tw = t(hwio_to_oihw(layer.params["kernel"]), grad=True)
    ty = F.conv2d(tx, tw, t(layer.params["bias"]), padding="same")
    ty.backward(t(nhwc_to_nchw(dy)))
    assert y.shape == (2, 7, 7, 5) and layer.output_shape == (7, 7, 5)
    assert_close(y, _back_to(ty, "NHWC"))
    assert_close(dx, _back_to(tx.grad, "NHWC"))
    assert_close(grads["kernel"], tw.grad.numpy().transpose(2, 3, 1, 0))


def test_conv2d_gradcheck(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    layer = nn.Conv2D(4, 3, stride=2, padding=1)
    layer.build(x.shape[1:], rng=rng, dtype=np.float64)

    def f(x_, w_, b_):
        layer.params["kernel"], layer.params["bias"] = w_, b_
        return layer.forward(x_, training=True)

    def grads(dy):
        dx = layer.backward(dy)
        return dx, layer.grads["kernel"], layer.grads["bias"]

    res = gradcheck(f, (x, layer.params["kernel"].copy(), rng.standard_normal(4)), grads)
    assert res.max_rel_error < 1e-6, res


def test_first_layer_skips_input_gradient(rng):
    layer = nn.Conv2D(2, 3)
    layer.needs_input_grad = False
    _, _, dx, grads = run_layer(layer, rng.standard_normal((1, 5, 5, 1)))
    assert dx is None and grads["kernel"].shape == (3, 3, 1, 2)


# ------------------------------------------------------------- ConvTranspose2D
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("opts", [
    dict(filters=3, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(filters=4, kernel_size=(2, 3), stride=(1, 2), padding=0, dilation=2, groups=2),
])
def test_conv_transpose2d_matches_torch(opts, data_format, rng):
    c_in = 4
    x = rng.standard_normal((2, 5, 4, c_in) if data_format == "NHWC" else (2, c_in, 5, 4))
    layer = nn.ConvTranspose2D(**opts, data_format=data_format)
    layer.build(x.shape[1:], rng=rng, dtype=np.float64)
    layer.params["bias"][...] = rng.standard_normal(opts["filters"])
    y, dy, dx, grads = run_layer(layer, x)
    w = layer.params["kernel"]
    tw = t(hwio_to_oihw(w) if data_format == "NHWC" else w, grad=True)
    tb = t(layer.params["bias"], grad=True)
    tx = _torch_image(x, data_format)
    ty = F.conv_transpose2d(tx, tw, tb, stride=layer.stride, padding=layer.padding,
                            output_padding=layer.output_padding, dilation=layer.dilation,
                            groups=layer.groups)
    ty.backward(t(nhwc_to_nchw(dy) if data_format == "NHWC" else dy))
    assert_close(y, _back_to(ty, data_format), what="y")
    assert_close(dx, _back_to(tx.grad, data_format), what="dx")
    tdw = tw.grad.numpy()
    assert_close(grads["kernel"], tdw.transpose(2, 3, 1, 0) if data_format == "NHWC" else tdw,
                 what="dkernel")
    assert_close(grads["bias"], tb.grad.numpy(), what="dbias")


# ---------------------------------------------------------------------- pooling
POOLS = [
    (nn.MaxPool2D(2), lambda a: F.max_pool2d(a, 2)),
    (nn.MaxPool2D(3, stride=2, padding=1, ceil_mode=True),
     lambda a: F.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True)),
    (nn.MaxPool2D(2, stride=1, dilation=2), lambda a: F.max_pool2d(a, 2, stride=1, dilation=2)),
    (nn.AvgPool2D(2), lambda a: F.avg_pool2d(a, 2)),
    (nn.AvgPool2D(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
     lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)),
    (nn.GlobalAvgPool2D(), lambda a: a.mean(dim=(2, 3))),
    (nn.GlobalMaxPool2D(), lambda a: a.amax(dim=(2, 3))),
]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", range(len(POOLS)))
def test_pooling_matches_torch(case, data_format, rng):
    proto, ref = POOLS[case]
    cfg = proto.get_config()
    cfg["data_format"] = data_format
    layer = nn.layer_from_config(cfg)
    x = rng.standard_normal((2, 7, 6, 3) if data_format == "NHWC" else (2, 3, 7, 6))
    y, dy, dx, grads = run_layer(layer, x)
    tx = _torch_image(x, data_format)
    ty = ref(tx)
    global_pool = ty.ndim == 2
    ty.backward(t(dy if global_pool or data_format == "NCHW" else nhwc_to_nchw(dy)))
    assert_close(y, ty.detach().numpy() if global_pool else _back_to(ty, data_format), what="y")
    assert_close(dx, _back_to(tx.grad, data_format), what="dx")
    assert grads == {} and layer.params == {}


# ------------------------------------------------------------ Flatten and Dense
def test_flatten_nchw_matches_torch_order(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = nn.Flatten()
    y, dy, dx, _ = run_layer(layer, x)
    np.testing.assert_array_equal(y, torch.flatten(t(x), 1).numpy())
    np.testing.assert_array_equal(dx, dy.reshape(x.shape))
    assert layer.output_shape == (60,)


def test_flatten_and_model_take_an_empty_batch():
    # torch.flatten(x, 1) of a (0, C, H, W) batch is (0, C*H*W); reshape(0, -1) cannot
    # tell the -1 and raised, so a model with a Flatten failed on an empty batch.
    x = np.zeros((0, 3, 4, 5))
    layer = nn.Flatten()
    y = layer.forward(x)
    assert y.shape == tuple(torch.flatten(t(x), 1).shape) == (0, 60)
    assert layer.backward(np.zeros((0, 60))).shape == x.shape
    model = nn.Sequential([nn.Conv2D(2, 3, padding="same"), nn.BatchNorm2D(), nn.Flatten(),
                           nn.Dense(3)], input_shape=(4, 4, 2), seed=0, dtype="float64")
    for training in (False, True):
        assert model.forward(np.zeros((0, 4, 4, 2)), training=training).shape == (0, 3)
        dx = model.backward(np.zeros((0, 3)), input_grad=True)
        assert dx.shape == (0, 4, 4, 2)
        for key, g in model.grads().items():
            np.testing.assert_array_equal(g, 0.0, err_msg=key)


def test_dense_matches_torch(rng):
    x = rng.standard_normal((5, 7))
    layer = nn.Dense(3)
    layer.build((7,), rng=rng, dtype=np.float64)
    layer.params["bias"][...] = rng.standard_normal(3)
    y, dy, dx, grads = run_layer(layer, x)
    tx, tw, tb = t(x, True), t(layer.params["kernel"].T, True), t(layer.params["bias"], True)
    ty = F.linear(tx, tw, tb)
    ty.backward(t(dy))
    assert_close(y, ty.detach().numpy())
    assert_close(dx, tx.grad.numpy())
    assert_close(grads["kernel"], tw.grad.numpy().T)
    assert_close(grads["bias"], tb.grad.numpy())


def test_dense_gradcheck(rng):
    layer = nn.Dense(4)
    x = rng.standard_normal((3, 6))
    layer.build((6,), rng=rng, dtype=np.float64)

    def f(x_, w_, b_):
        layer.params["kernel"], layer.params["bias"] = w_, b_
        return layer.forward(x_)

    def grads(dy):
        return layer.backward(dy), layer.grads["kernel"], layer.grads["bias"]

    res = gradcheck(f, (x, layer.params["kernel"].copy(), rng.standard_normal(4)), grads)
    assert res.max_rel_error < 1e-6, res


@pytest.fixture
def two_engine_threads():
    """The engine's thread pool at 2 threads, whatever the machine's cores."""
    previous = set_num_threads(2)
    yield
    set_num_threads(previous)


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("make,ref", [
    (nn.ReLU, F.relu),
    (lambda: nn.LeakyReLU(0.2), lambda a: F.leaky_relu(a, 0.2)),
])
@pytest.mark.parametrize("shape", [(3, 4, 5, 2), (8, 24, 24, 64)])  # the 2nd: chunks on 2 threads
def test_activations_match_torch(make, ref, shape, rng, two_engine_threads):
    layer = make()
    x = rng.standard_normal(shape)
    x[0, 0, 0, 0] = 0.0  # the kink: both give gradient 0 (ReLU) or the slope (LeakyReLU)
    y, dy, dx, _ = run_layer(layer, x)
    tx = t(x, True)
    ty = ref(tx)
    ty.backward(t(dy))
    assert_close(y, ty.detach().numpy())
    assert_close(dx, tx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [None, 0.0, 0.01, 0.2, 1.0, 1.5, -0.5])  # None: ReLU
def test_relu_and_leaky_relu_equal_torch_bit_for_bit(slope, dtype, rng, two_engine_threads):
    """Values and gradients to the bit, signed zeros, infinities and NaN included: a
    NaN input passes its gradient, and a masked position's gradient is exactly 0 (ReLU)
    even where ``dy`` is inf or NaN. The one difference: ReLU maps -0.0 to +0.0."""
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.0, -3.0,
                        -1.0, -0.0, np.nan, -np.inf])
    special_dy = [1.0, -1.0, 2.0, -2.0, 0.5, np.inf, -np.inf, np.nan, -0.0,
                  np.inf, np.nan, -0.0, np.nan]
    x = np.concatenate([special, rng.standard_normal(8 * 24 * 24 * 64 - special.size)])
    x = x.reshape(8, 24, 24, 64).astype(dtype)  # large enough for chunks on 2 threads
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy.reshape(-1)[:special.size] = special_dy
    layer = nn.ReLU() if slope is None else nn.LeakyReLU(slope)
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = F.relu(tx) if slope is None else F.leaky_relu(tx, slope)
    ty.backward(torch.from_numpy(dy))
    ty = ty.detach().numpy()
    assert y.dtype == dtype and dx.dtype == dtype
    # bit patterns: equal values, the same signed zeros, NaN where torch has NaN
    np.testing.assert_array_equal(y, ty)
    if slope is None:  # torch's relu keeps -0.0; ours gives +0.0 (and only there)
        negative_zero = (x == 0) & np.signbit(x)
        assert not np.signbit(y[negative_zero]).any() and np.signbit(ty[negative_zero]).all()
        ty = np.where(negative_zero, 0.0, ty)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty))
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(tx.grad.numpy()))
    np.testing.assert_array_equal(dx, tx.grad.numpy())


# ---------------------------------------------------------------------- Dropout
def test_dropout_scales_survivors_and_masks_gradient(rng):
    layer = nn.Dropout(0.3, seed=0)
    x = rng.standard_normal((200, 50))
    y, dy, dx, _ = run_layer(layer, x)
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    np.testing.assert_allclose(dx, np.where(kept, dy / 0.7, 0.0), rtol=1e-15)
    assert layer.forward(x, training=False) is x
    again = nn.Dropout(0.3, seed=0).forward(x, training=True)
    np.testing.assert_array_equal(again, y)


def test_dropout_keeps_float32(rng):
    x = rng.standard_normal((4, 8)).astype(np.float32)
    layer = nn.Dropout(0.5, seed=1)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32


# -------------------------------------------------------------------- BatchNorm
# "chunked": 2.4 MB in float64, split into cache-sized chunks spread over two threads.
# NHWC rows hold R pixels: "small" and "chunked" R = H*W, "wide" R = W (H*W*C is over
# 2**16), "widest" R = 1 (W*C is over 2**16).
BN_SIZES = {"small": (3, (4, 5, 6)), "chunked": (64, (8, 24, 24)), "wide": (3, (2, 150, 160)),
            "widest": (300, (2, 2, 240))}


@pytest.mark.parametrize("size", list(BN_SIZES))
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_batchnorm_train_and_eval_match_torch(data_format, size, rng, two_engine_threads):
    c, (n, h, w) = BN_SIZES[size]
    shape = (n, h, w, c) if data_format == "NHWC" else (n, c, h, w)
    layer = nn.BatchNorm2D(momentum=0.2, data_format=data_format)
    ref = torch.nn.BatchNorm2d(c, momentum=0.2, eps=1e-5).double()
    layer.build(shape[1:], dtype=np.float64)
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    with torch.no_grad():
        ref.weight[...] = t(gamma)
        ref.bias[...] = t(beta)
    for step in range(3):  # running statistics over several training steps
        x = rng.standard_normal(shape) * 2 + 1
        y, dy, dx, grads = run_layer(layer, x, dy_seed=step)
        ref.zero_grad()
        tx = _torch_image(x, data_format)
        ty = ref(tx)
        ty.backward(t(nhwc_to_nchw(dy) if data_format == "NHWC" else dy))
        assert_close(y, _back_to(ty, data_format), what=f"train y, step {step}")
        assert_close(dx, _back_to(tx.grad, data_format), what=f"train dx, step {step}")
        assert_close(grads["gamma"], ref.weight.grad.numpy(), what="dgamma")
        assert_close(grads["beta"], ref.bias.grad.numpy(), what="dbeta")
        assert_close(layer.buffers["running_mean"], ref.running_mean.numpy(), what="running_mean")
        assert_close(layer.buffers["running_var"], ref.running_var.numpy(), what="running_var")
    ref.eval()
    x = rng.standard_normal(shape)
    y, dy, dx, grads = run_layer(layer, x, training=False)
    ref.zero_grad()
    tx = _torch_image(x, data_format)
    ty = ref(tx)
    ty.backward(t(nhwc_to_nchw(dy) if data_format == "NHWC" else dy))
    assert_close(y, _back_to(ty, data_format), what="eval y")
    assert_close(dx, _back_to(tx.grad, data_format), what="eval dx")
    assert_close(grads["gamma"], ref.weight.grad.numpy(), what="eval dgamma")
    assert_close(grads["beta"], ref.bias.grad.numpy(), what="eval dbeta")


def test_batchnorm_gradcheck_training_mode(rng):
    x = rng.standard_normal((3, 4, 2, 2))
    layer = nn.BatchNorm2D()
    layer.build(x.shape[1:], dtype=np.float64)

    def f(x_, g_, b_):
        layer.params["gamma"], layer.params["beta"] = g_, b_
        return layer.forward(x_, training=True)

    def grads(dy):
        return layer.backward(dy), layer.grads["gamma"], layer.grads["beta"]

    res = gradcheck(f, (x, rng.standard_normal(2), rng.standard_normal(2)), grads)
    assert res.max_rel_error < 1e-6, res


def test_batchnorm_float32_stays_float32(rng):
    x = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    layer = nn.BatchNorm2D()
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(a.dtype == np.float32 for a in [*layer.params.values(), *layer.buffers.values(),
                                               *layer.grads.values()])


# ------------------------------------------------------- initializers and errors
def test_he_and_glorot_initializers_scale_and_seed():
    a = nn.Conv2D(64, 3, kernel_init="he")
    a.build((8, 8, 32), rng=np.random.default_rng(0))
    std = a.params["kernel"].std()
    assert abs(std - np.sqrt(2 / (32 * 9))) < 0.02 * np.sqrt(2 / (32 * 9)) * 5
    assert a.params["kernel"].dtype == np.float32 and not a.params["bias"].any()
    b = nn.Dense(300, kernel_init="glorot")
    b.build((200,), rng=np.random.default_rng(0))
    limit = np.sqrt(6 / 500)
    assert np.abs(b.params["kernel"]).max() <= limit
    assert np.abs(b.params["kernel"]).max() > 0.99 * limit
    c = nn.Dense(300, kernel_init="glorot")
    c.build((200,), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(b.params["kernel"], c.params["kernel"])


@pytest.mark.parametrize("make,exc,match", [
    (lambda: nn.Conv2D(0, 3), ValueError, "filters"),
    (lambda: nn.Conv2D(4, 3, groups=3), ValueError, "groups"),
    (lambda: nn.Conv2D(4, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2D(4, 3, data_format="NWHC"), ValueError, "data_format"),
    (lambda: nn.Conv2D(4, 3, kernel_init="zeros"), ValueError, "kernel_init"),
    (lambda: nn.Conv2D(4, 2.5), TypeError, "kernel_size"),
    (lambda: nn.MaxPool2D(2, stride=0), ValueError, "stride"),
    (lambda: nn.Dropout(1.0), ValueError, "rate"),
    (lambda: nn.Dense(3, use_bias="yes"), TypeError, "use_bias"),
    (lambda: nn.BatchNorm2D(momentum=2), ValueError, "momentum"),
])
def test_bad_options_raise(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_wrong_input_shapes_name_the_layer(rng):
    conv = nn.Conv2D(4, 3, name="c1")
    conv.forward(rng.standard_normal((2, 6, 6, 3)))
    with pytest.raises(ValueError, match=r"Conv2D 'c1' expects input of shape \(N, 6, 6, 3\); "
                                         r"got \(2, 6, 6, 2\)"):
        conv.forward(rng.standard_normal((2, 6, 6, 2)))
    with pytest.raises(ValueError, match="Flatten"):
        nn.Dense(3).forward(rng.standard_normal((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2D(4, 3, groups=2).forward(rng.standard_normal((1, 5, 5, 3)))
    with pytest.raises(ValueError, match="dy must have"):
        conv.backward(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="forward first"):
        nn.ReLU().backward(np.zeros(3))
    pool = nn.MaxPool2D(5)
    with pytest.raises(ValueError, match="MaxPool2D: .*larger than the padded input"):
        pool.forward(np.zeros((1, 3, 3, 2)))
    assert not pool.built  # a failed build leaves the layer unbuilt, ready for other input
    assert pool.forward(np.zeros((1, 6, 6, 2))).shape == (1, 1, 1, 2)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_batchnorm_empty_batch_matches_torch(data_format, rng):
    """N = 0 in training: an empty output, empty dx, zero parameter gradients and the
    running statistics unchanged, as torch.nn.BatchNorm2d."""
    c, shape = 3, (4, 5, 3) if data_format == "NHWC" else (3, 4, 5)
    layer = nn.BatchNorm2D(data_format=data_format)
    ref = torch.nn.BatchNorm2d(c).double()
    layer.forward(rng.standard_normal((2, *shape)), training=True)  # non-trivial statistics
    with torch.no_grad():
        ref.running_mean[...] = t(layer.buffers["running_mean"])
        ref.running_var[...] = t(layer.buffers["running_var"])
    before = {k: b.copy() for k, b in layer.buffers.items()}
    for training in (True, False):
        ref.train(training)
        x = np.zeros((0, *shape))
        y, dy, dx, grads = run_layer(layer, x, training=training)
        tx = _torch_image(x, data_format)
        ty = ref(tx)
        ty.sum().backward()
        assert y.shape == dx.shape == x.shape and y.dtype == np.float64
        assert not np.isnan(layer.buffers["running_mean"]).any()
        for k, b in before.items():
            np.testing.assert_array_equal(layer.buffers[k], b, err_msg=k)
        assert_close(layer.buffers["running_var"], ref.running_var.numpy())
        np.testing.assert_array_equal(grads["gamma"], np.zeros(c))
        np.testing.assert_array_equal(grads["beta"], np.zeros(c))
        assert tuple(ty.shape) == (0, 3, *(shape[:2] if data_format == "NHWC" else shape[1:]))
        ref.zero_grad()


def test_batchnorm_one_value_per_channel_in_training_raises_like_torch():
    layer = nn.BatchNorm2D(name="bn")
    layer.forward(np.arange(12.0).reshape(4, 1, 1, 3), training=True)
    before = {k: b.copy() for k, b in layer.buffers.items()}
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.BatchNorm2d(3)(torch.ones(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"BatchNorm2D 'bn': expected more than 1 value per "
                                         r"channel when training .* got input of shape "
                                         r"\(1, 1, 1, 3\), N\*H\*W = 1"):
        layer.forward(np.ones((1, 1, 1, 3)), training=True)
    for k, b in before.items():
        np.testing.assert_array_equal(layer.buffers[k], b, err_msg=k)
    # in inference one value is fine (running statistics), and two in training too
    assert layer.forward(np.ones((1, 1, 1, 3))).shape == (1, 1, 1, 3)
    assert layer.forward(np.arange(6.0).reshape(2, 1, 1, 3), training=True).shape == (2, 1, 1, 3)
