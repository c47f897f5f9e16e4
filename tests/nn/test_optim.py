"""Optimizer steps against torch.optim over several steps, clipping, schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convblocks import nn

from ._helpers import assert_close, t, torch


def _run_both(ours, make_torch, steps: int = 5, seed: int = 0):
    """Apply the same gradient sequence to two parameters with each optimizer."""
    rng = np.random.default_rng(seed)
    p0 = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    mine = {k: v.copy() for k, v in p0.items()}
    theirs = {k: t(v, True) for k, v in p0.items()}
    opt = make_torch(list(theirs.values()))
    for _ in range(steps):
        grads = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
        ours.step(mine, {k: g.copy() for k, g in grads.items()})
        for k, p in theirs.items():
            p.grad = t(grads[k])
        opt.step()
    for k in p0:
        assert_close(mine[k], theirs[k].detach().numpy(), what=k)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, weight_decay=0.1),
    dict(momentum=0.9, nesterov=True, weight_decay=0.05),
])
def test_sgd_matches_torch(kwargs):
    _run_both(nn.SGD(0.1, **kwargs), lambda ps: torch.optim.SGD(ps, lr=0.1, **kwargs))


@pytest.mark.parametrize("kwargs", [dict(), dict(weight_decay=0.1),
                                    dict(betas=(0.8, 0.99), eps=1e-6)])
def test_adam_matches_torch(kwargs):
    _run_both(nn.Adam(0.01, **kwargs), lambda ps: torch.optim.Adam(ps, lr=0.01, **kwargs))


@pytest.mark.parametrize("kwargs", [dict(), dict(weight_decay=0.3)])
def test_adamw_matches_torch(kwargs):
    _run_both(nn.AdamW(0.01, **kwargs), lambda ps: torch.optim.AdamW(ps, lr=0.01, **kwargs))


def test_float32_parameters_stay_float32():
    p = {"w": np.ones(4, dtype=np.float32)}
    for opt in (nn.SGD(0.1, momentum=0.9, weight_decay=0.1), nn.Adam(), nn.AdamW()):
        opt.step(p, {"w": np.full(4, 0.5, dtype=np.float32)})
        assert p["w"].dtype == np.float32
        assert all(a.dtype == np.float32 for k, a in opt.state_dict().items() if k != "iterations")


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(3)
    grads = [{"w": rng.standard_normal(6)} for _ in range(4)]
    a, pa = nn.Adam(0.05), {"w": np.ones(6)}
    for g in grads:
        a.step(pa, g)
    b, pb = nn.Adam(0.05), {"w": np.ones(6)}
    for g in grads[:2]:
        b.step(pb, g)
    c = nn.Adam(0.05)
    c.load_state_dict(b.state_dict())
    for g in grads[2:]:
        c.step(pb, g)
    np.testing.assert_array_equal(pa["w"], pb["w"])
    assert c.iterations == 4


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(5)
    grads = {"a": rng.standard_normal((3, 3)), "b": rng.standard_normal(4)}
    tg = [t(g) for g in grads.values()]
    params = [torch.zeros_like(g, requires_grad=True) for g in tg]
    for p, g in zip(params, tg):
        p.grad = g.clone()
    ref_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    norm = nn.clip_grad_norm(grads, 1.0)
    assert abs(norm - ref_norm.item()) < 1e-12
    for g, p in zip(grads.values(), params):
        assert_close(g, p.grad.numpy())
    small = {"a": np.full(3, 0.1)}
    nn.clip_grad_norm(small, 10.0)
    np.testing.assert_array_equal(small["a"], np.full(3, 0.1))


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr"):
        nn.SGD(-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        nn.Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="no gradient for parameter 'w'"):
        nn.Adam().step({"w": np.ones(2)}, {})
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        nn.SGD().step({"w": np.ones(2)}, {"w": np.ones(3)})


# ------------------------------------------------------------------- schedules
def test_step_schedule_matches_torch_steplr():
    sched = nn.StepSchedule(3, gamma=0.5)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    for step in range(10):
        assert sched(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        ref.step()


def test_cosine_schedule_matches_torch_cosine_annealing():
    sched = nn.CosineSchedule(10, final_scale=0.1)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=2.0)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.2)
    for step in range(11):
        assert 2.0 * sched(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        ref.step()
    # past total_steps it stays at the floor (50 alone would not show it: cos(5 pi) = -1)
    assert sched(15) == sched(30) == sched(50) == pytest.approx(0.1)


def test_cosine_warmup():
    sched = nn.CosineSchedule(12, warmup_steps=4)
    assert [sched(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert sched(4) == 1.0 and sched(8) == pytest.approx(0.5) and sched(12) == 0.0
    assert sched(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))
    with pytest.raises(ValueError, match="warmup_steps"):
        nn.CosineSchedule(5, warmup_steps=5)


@pytest.mark.parametrize("make", [lambda: nn.SGD(0.1, momentum=0.9), nn.Adam, nn.AdamW])
@pytest.mark.parametrize("params,grads,exc,match", [
    ({"a": np.ones(3)}, {"a": [1.0, 2.0, 3.0]}, TypeError, r"gradient for 'a' must be an ndarray; "
                                                           r"got list"),
    ([np.ones(3)], {"a": np.ones(3)}, TypeError, r"params must be a dict .* got list"),
    ({"a": np.ones(3)}, [np.ones(3)], TypeError, r"grads must be a dict .* got list"),
    ({"a": np.ones(3)}, {"a": np.ones(3) * (1 + 1j)}, TypeError,
     r"gradient for 'a' has dtype complex128; the parameter's is float64"),
    ({"a": np.ones(3)}, {"a": np.ones(3, np.float16)}, TypeError, r"dtype float16"),
    ({"a": np.ones(3, np.float32)}, {"a": np.ones(3)}, TypeError,
     r"gradient for 'a' has dtype float64; the parameter's is float32"),
    ({"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(3), "b": np.ones(2, object)}, TypeError,
     r"gradient for 'b' has dtype object"),
    ({"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(3), "b": np.ones(3)}, ValueError,
     r"gradient for 'b' has shape \(3,\); parameter has \(2,\)"),
    ({"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(3)}, ValueError,
     r"no gradient for parameter 'b'"),
    ({"a": np.ones(3)}, {"a": np.ones(3), "c": np.ones(1)}, ValueError,
     r"grads has keys that are not parameters: \['c'\]"),
    ({"a": np.ones(3), "b": np.ones(2, int)}, {"a": np.ones(3), "b": np.ones(2, int)}, TypeError,
     r"parameter 'b' must be a float32 or float64 ndarray; got dtype int64"),
    ({"a": np.ones(3), "b": [1.0, 2.0]}, {"a": np.ones(3), "b": np.ones(2)}, TypeError,
     r"parameter 'b' must be a float32 or float64 ndarray; got list"),
])
def test_step_checks_everything_before_updating(make, params, grads, exc, match):
    opt = make()
    before = {k: np.array(v, copy=True) for k, v in params.items()} if isinstance(params, dict) \
        else None
    with pytest.raises(exc, match=match):
        opt.step(params, grads)
    assert opt.iterations == 0 and opt.state == {}
    if before is not None:
        for k, v in before.items():
            np.testing.assert_array_equal(params[k], v, err_msg=k)


def test_step_refuses_read_only_parameters():
    p = np.ones(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="parameter 'w' is read-only"):
        nn.SGD().step({"w": p}, {"w": np.ones(3)})


def test_load_state_dict_checks_slots_against_parameters():
    params = {"a": np.ones((2, 3), np.float32), "b": np.ones(4, np.float32)}
    opt = nn.Adam()
    opt.step(params, {k: np.ones_like(v) for k, v in params.items()})
    state = opt.state_dict()
    fresh = nn.Adam()
    fresh.load_state_dict(state, params)
    assert fresh.iterations == 1 and fresh.state.keys() == {"a", "b"}
    bad = dict(state)
    del bad["exp_avg_sq/b"]
    with pytest.raises(ValueError, match="lacks 'exp_avg_sq/b'"):
        nn.Adam().load_state_dict(bad, params)
    bad = {**state, "exp_avg/a": np.zeros(6, np.float32)}
    with pytest.raises(ValueError, match=r"'exp_avg/a' has shape \(6,\) float32; its parameter "
                                         r"has \(2, 3\) float32"):
        nn.Adam().load_state_dict(bad, params)
    for it in (-1, 1.0, True, np.array([1])):
        with pytest.raises(ValueError, match="'iterations' must be an integer >= 0"):
            fresh.load_state_dict({**state, "iterations": it})
    assert fresh.iterations == 1  # unchanged by the refused loads
    with pytest.raises(ValueError, match="unexpected entries"):  # no slot before a step
        nn.Adam().load_state_dict({**state, "iterations": np.array(0)}, params)


def test_clip_grad_norm_clips_every_norm_above_the_limit():
    """A norm of 5 with max_norm 4 (between 1x and 2x the limit) is scaled to 4."""
    grads = {"a": np.array([3.0, 4.0])}
    nn.clip_grad_norm(grads, 4.0)
    assert np.linalg.norm(grads["a"]) == pytest.approx(4.0, rel=1e-5)
    np.testing.assert_allclose(grads["a"], [2.4, 3.2], rtol=1e-5)


def test_step_lr_overrides_the_optimizer_lr():
    """The model passes the schedule's lr to every step: it must be the one used."""
    params = {"a": np.ones(2)}
    nn.SGD(lr=1.0).step(params, {"a": np.ones(2)}, lr=0.1)
    np.testing.assert_allclose(params["a"], 0.9)


def test_momentum_buffer_is_not_the_callers_gradient():
    """Two steps with the same grads dict: the grads stay untouched, v = 1 then 1.5."""
    params, grads = {"a": np.zeros(1)}, {"a": np.ones(1)}
    opt = nn.SGD(lr=1.0, momentum=0.5)
    opt.step(params, grads)
    opt.step(params, grads)
    np.testing.assert_array_equal(grads["a"], 1.0)
    np.testing.assert_allclose(params["a"], -(1 + 1.5))


def test_load_state_dict_copies_the_state():
    """The next step must not write into the arrays the caller handed over."""
    params = {"a": np.zeros(2)}
    first = nn.Adam()
    first.step(params, {"a": np.ones(2)})
    state = first.state_dict()
    before = {k: np.array(v, copy=True) for k, v in state.items()}
    second = nn.Adam()
    second.load_state_dict(state)
    second.step(params, {"a": np.ones(2)})
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])
