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
    assert sched(50) == pytest.approx(0.1)


def test_cosine_warmup():
    sched = nn.CosineSchedule(12, warmup_steps=4)
    assert [sched(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert sched(4) == 1.0 and sched(8) == pytest.approx(0.5) and sched(12) == 0.0
    assert sched(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))
    with pytest.raises(ValueError, match="warmup_steps"):
        nn.CosineSchedule(5, warmup_steps=5)
