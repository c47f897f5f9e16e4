"""Bad input to convblocks.nn's public API: a clear TypeError/ValueError at the boundary
that names the argument, never an AttributeError, a NumPy broadcasting error or a
silently wrong result (found by fuzzing constructors and methods with bad values)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convblocks import nn
from convblocks.nn import optim as nn_optim
from convblocks.nn import schedules as nn_schedules


def tiny_model(**kw):
    return nn.Sequential([nn.Conv2D(2, 3, padding="same"), nn.ReLU(), nn.Flatten(), nn.Dense(3)],
                         seed=0, **kw)


def tiny_data(n=6):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4, 4, 1)).astype(np.float32), np.arange(n) % 3


def compiled(**kw):
    model = tiny_model(input_shape=(4, 4, 1))
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(0.1), **kw)
    return model


# ------------------------------------------------------------------------ numbers
@pytest.mark.parametrize("make", [
    lambda v: nn.LeakyReLU(v), lambda v: nn.Dropout(v), lambda v: nn.BatchNorm2D(momentum=v),
    lambda v: nn.SGD(v), lambda v: nn.Adam(eps=v), lambda v: nn.StepSchedule(3, gamma=v),
    lambda v: nn.clip_grad_norm({"a": np.ones(2)}, v)])
@pytest.mark.parametrize("bad", [np.complex128(0.5), np.timedelta64(1)])
def test_numpy_complex_and_timedelta_are_not_numbers(make, bad):
    # float() would drop the imaginary part / read the timedelta as a plain count
    with pytest.raises(TypeError,
                       match=r"must be a real number; got .*\((complex128|timedelta64)\)"):
        make(bad)


@pytest.mark.parametrize("make,name", [
    (lambda v: nn.LeakyReLU(v), "negative_slope"), (lambda v: nn.BatchNorm2D(eps=v), "eps")])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_slope_and_eps_are_refused(make, name, bad):
    with pytest.raises(ValueError, match=f"{name} must be finite; got"):
        make(bad)


def test_numpy_floats_are_numbers_everywhere():
    assert nn.StepSchedule(3, gamma=np.float32(0.5)).gamma == 0.5
    assert nn.CosineSchedule(4, final_scale=np.float64(0.25)).final_scale == 0.25
    model = tiny_model()
    model.compile(loss=nn.MSE(), optimizer=nn.SGD(), clip_norm=np.float32(2.0))
    assert model.clip_norm == 2.0 and type(model.clip_norm) is float


@pytest.mark.parametrize("bad", [float("inf"), np.float32("inf")])
def test_infinite_clip_norm_is_refused_at_compile_not_at_the_first_step(bad):
    model = tiny_model()
    with pytest.raises(ValueError, match="clip_norm must be finite and > 0"):
        model.compile(loss=nn.MSE(), optimizer=nn.SGD(), clip_norm=bad)


# ------------------------------------------------------------------ layer building
@pytest.mark.parametrize("shape,error,match", [
    (None, TypeError, r"ReLU: input_shape must be a tuple of ints; got None"),
    (5, TypeError, r"input_shape must be a tuple of ints; got 5"),
    (("8", "8"), TypeError, r"input_shape\[0\] must be an integer; got '8'"),
    ((2.5, 3), TypeError, r"input_shape\[0\] must be an integer; got 2.5"),
    ((True, 3), TypeError, r"input_shape\[0\] must be an integer; got True"),
])
def test_layer_build_checks_the_input_shape(shape, error, match):
    layer = nn.ReLU()
    with pytest.raises(error, match=match):
        layer.build(shape)
    assert not layer.built


def test_layer_build_checks_rng_and_dtype():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or None; got int"):
        nn.ReLU().build((3,), rng=0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got None"):
        nn.ReLU().build((3,), dtype=None)
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got 'bogus'"):
        nn.ReLU().build((3,), dtype="bogus")
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got None"):
        nn.Sequential([nn.Flatten()], dtype=None)  # np.dtype(None) would mean float64


def test_layer_from_config_names_unknown_and_missing_options():
    with pytest.raises(ValueError,
                       match=r"invalid Dense config .*'bogus'.*Dense takes \['units', "):
        nn.layer_from_config({"class": "Dense", "units": 3, "bogus": 1})
    with pytest.raises(ValueError, match=r"invalid Dense config .*'units'"):
        nn.layer_from_config({"class": "Dense"})
    with pytest.raises(ValueError, match=r"unknown layer class \['Dense'\]"):
        nn.layer_from_config({"class": ["Dense"]})


def test_optimizer_and_schedule_configs_name_unknown_options():
    with pytest.raises(ValueError, match=r"invalid SGD config .*'bogus'.*SGD takes \['lr', "):
        nn_optim.optimizer_from_config({"class": "SGD", "lr": 0.1, "bogus": 1})
    with pytest.raises(ValueError, match=r"unknown optimizer config .*'class' and 'lr'"):
        nn_optim.optimizer_from_config({"class": "SGD"})
    with pytest.raises(ValueError, match=r"invalid StepSchedule config .*'bogus'"):
        nn_schedules.schedule_from_config({"class": "StepSchedule", "step_size": 3, "bogus": 1})
    with pytest.raises(ValueError, match=r"unknown schedule config"):
        nn_schedules.schedule_from_config({"class": ["StepSchedule"]})


# ------------------------------------------------------------------- initializers
@pytest.mark.parametrize("init", [nn.he_normal, nn.he_uniform, nn.glorot_normal,
                                  nn.glorot_uniform])
def test_initializers_refuse_a_zero_fan(init):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fan_in must be >= 1; got 0"):
        init((2, 2), 0, 1, rng, np.float32)
    with pytest.raises(ValueError, match="fan_out must be >= 1; got 0"):
        init((2, 2), 1, 0, rng, np.float32)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"fan_in": "3"}, TypeError, "fan_in must be an integer; got '3'"),
    ({"fan_in": 2.7}, TypeError, "fan_in must be an integer; got 2.7"),
    ({"fan_in": -3}, ValueError, "fan_in must be >= 1; got -3"),
    ({"fan_out": None}, TypeError, "fan_out must be an integer; got None"),
    ({"shape": 3}, TypeError, "shape must be a tuple of ints; got 3"),
    ({"shape": (-1, 3)}, ValueError, r"shape\[0\] must be >= 0; got -1"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64; got int32"),
    ({"dtype": "bogus"}, TypeError, "dtype must be float32 or float64; got 'bogus'"),
])
def test_initialize_checks_its_arguments(kwargs, error, match):
    args = {"shape": (2, 2), "fan_in": 4, "fan_out": 4, "rng": np.random.default_rng(0),
            **kwargs}
    shape = args.pop("shape")
    with pytest.raises(error, match=match):
        nn.initialize("he", shape, **args)


# ------------------------------------------------------------------------- losses
@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax])
def test_softmax_takes_lists_and_ints_and_refuses_the_rest(fn):
    np.testing.assert_allclose(np.exp(nn.log_softmax([[1, 2]])), nn.softmax([[1.0, 2.0]]))
    assert fn([1, 2]).dtype == np.float64
    with pytest.raises(TypeError, match="logits must hold float32, float64 or integer"):
        fn(None)
    with pytest.raises(ValueError,
                       match=r"logits must have at least one class .*got shape \(3, 0\)"):
        fn(np.zeros((3, 0)))


@pytest.mark.parametrize("loss", [nn.SoftmaxCrossEntropy(), nn.MSE()])
def test_check_targets_takes_any_array_like(loss):
    loss.check_targets([[0.0, 1.0, 0.0]], (3,), "y")  # a list, as Sequential would pass an array
    with pytest.raises((TypeError, ValueError), match="y must"):  # not AttributeError
        loss.check_targets(None, (3,), "y")


@pytest.mark.parametrize("loss,y", [
    (nn.SoftmaxCrossEntropy(), np.full((6, 3), np.nan)),
    (nn.MSE(), np.where(np.eye(6, 3) > 0, np.inf, 0.0)),
])
def test_non_finite_targets_are_refused_before_the_first_step(loss, y):
    x, _ = tiny_data()
    model = tiny_model(input_shape=(4, 4, 1))
    model.compile(loss=loss, optimizer=nn.SGD(0.1))
    before = {k: v.copy() for k, v in model.params().items()}
    with pytest.raises(ValueError, match=r"y must be finite; got \d+ NaN or infinite value"):
        model.fit(x, y)
    with pytest.raises(ValueError, match=r"validation_data\[1\] must be finite"):
        model.fit(x, np.eye(6, 3) if loss.classification else np.zeros((6, 3)),
                  validation_data=(x, y))
    assert all(np.array_equal(before[k], v) for k, v in model.params().items())


# --------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("opt", [nn.SGD(0.1, momentum=0.9), nn.Adam()])
def test_step_refuses_state_of_another_shape_instead_of_broadcasting(opt):
    opt.step({"w": np.ones(3)}, {"w": np.ones(3)})
    p = {"w": np.ones(4)}
    with pytest.raises(ValueError, match=r"optimizer state '\w+/w' has shape \(3,\) float64, "
                                         r"but parameter 'w' has \(4,\) float64"):
        opt.step(p, {"w": np.ones(4)})
    assert opt.iterations == 1 and np.array_equal(p["w"], np.ones(4))


def test_load_state_dict_checks_its_arguments():
    opt = nn.Adam()
    with pytest.raises(TypeError, match="optimizer state must be a dict .*; got NoneType"):
        opt.load_state_dict(None)
    with pytest.raises(TypeError, match="params must be a dict .* or None; got list"):
        opt.load_state_dict({"iterations": 0}, [np.ones(2)])
    with pytest.raises(ValueError, match="optimizer state keys must be strings"):
        opt.load_state_dict({"iterations": 0, 3: np.ones(2)})
    with pytest.raises(ValueError, match=r"'iterations' must be < 2\*\*63"):
        opt.load_state_dict({"iterations": np.array(2**64 - 1, dtype=np.uint64)})


@pytest.mark.parametrize("grads,match", [
    (None, "grads must be a dict or a list of gradient arrays; got NoneType"),
    ({"a": None}, r"grads\['a'\] must be a float32 or float64 ndarray; got NoneType"),
    ([np.ones(2, complex)],
     r"grads\[0\] must be a float32 or float64 ndarray; got dtype complex128"),
    ({"a": np.array([100, 100])}, r"grads\['a'\] must be .* got dtype int64"),
])
def test_clip_grad_norm_checks_the_gradients(grads, match):
    with pytest.raises(TypeError, match=match):
        nn.clip_grad_norm(grads, 1.0)


# --------------------------------------------------------------------- Sequential
@pytest.mark.parametrize("layers,match", [
    (None, "layers must be a list of convblocks.nn layers; got NoneType"),
    (3, "layers must be a list of convblocks.nn layers; got int"),
    (nn.Dense(3), "got a single Dense .*wrap it in a list"),
])
def test_sequential_layers_must_be_a_list(layers, match):
    with pytest.raises(TypeError, match=match):
        nn.Sequential(layers)


def test_ragged_and_empty_example_inputs_name_x():
    model = compiled()
    for call in (lambda: model.fit([[1.0, 2.0], [3.0]], [0, 1]),
                 lambda: model.predict([[1.0, 2.0], [3.0]])):
        with pytest.raises(TypeError, match="x must be a numeric array; got list that NumPy "
                                            "cannot turn into one"):
            call()
    with pytest.raises(ValueError, match=r"x must have positive sizes after the batch axis "
                                         r"\(N, \.\.\.\); got shape \(1, 0, 4, 1\)"):
        tiny_model().predict(np.zeros((1, 0, 4, 1)))


def test_train_step_takes_list_targets():
    x, y = tiny_data()
    loss, correct = compiled().train_step(x, list(y))
    assert np.isfinite(loss) and 0 <= correct <= len(y)


class _NoHooks:
    pass


class _NotCallable:
    on_epoch_end = 3


@pytest.mark.parametrize("callbacks,match", [
    (None, "callbacks must be a list of callback objects .*; got NoneType"),
    (_NotCallable(), "callbacks must be a list of callback objects .*; got _NotCallable"),
    ([3], r"callbacks\[0\] must have at least one of on_train_begin, .*; got 3 \(int\)"),
    ([_NoHooks()], r"callbacks\[0\] must have at least one of"),
    ([_NotCallable()], r"callbacks\[0\].on_epoch_end must be callable; got 3"),
])
def test_fit_checks_callbacks_before_training(callbacks, match):
    x, y = tiny_data()
    model = compiled()
    before = {k: v.copy() for k, v in model.params().items()}
    with pytest.raises(TypeError, match=match):
        model.fit(x, y, epochs=1, callbacks=callbacks)
    assert all(np.array_equal(before[k], v) for k, v in model.params().items())


def test_epoch_state_with_more_correct_than_seen_is_inconsistent():
    x, y = tiny_data(8)
    model = compiled()

    class Stop:
        def on_batch_end(self, batch, logs):
            raise nn.StopTraining

    model.fit(x, y, epochs=1, batch_size=4, seed=1, callbacks=[Stop()])
    state = json.loads(json.dumps(model.epoch_state))
    state["correct"] = state["seen"] + 1
    with pytest.raises(ValueError, match=r"epoch_state is inconsistent: .*4 of 8 examples seen, "
                                         r"5 of them correct"):
        model.fit(x, y, epochs=1, batch_size=4, seed=1, initial_batch=1, epoch_state=state)


@pytest.mark.parametrize("config", [None, {}, {"layers": 3}])
def test_from_config_needs_a_layers_list(config):
    with pytest.raises(ValueError, match="config must be a dict with a 'layers' list"):
        nn.Sequential.from_config(config)


# ------------------------------------------------------------------ serialization
@pytest.mark.parametrize("path", [None, 3])
def test_save_and_load_name_a_bad_path(path):
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike; got"):
        compiled().save(path)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike; got"):
        nn.load_model(path)


def test_save_over_a_directory_names_it(tmp_path):
    with pytest.raises(IsADirectoryError, match="cannot save the model to .*: it is a directory"):
        compiled().save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_weights_the_architecture_has_no_place_for(tmp_path):
    path = tmp_path / "m.npz"
    compiled().save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/9.kernel"] = np.ones((2, 2), np.float32)  # e.g. a layer lost from the JSON
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"does not match its architecture: it holds "
                                         r"\['param/9.kernel'\], which the architecture has no "
                                         r"param for"):
        nn.load_model(path)
