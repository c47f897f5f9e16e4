"""Both backward functions against central differences (float64, rel. error < 1e-6)."""

import numpy as np
import pytest

from convblocks import course, gradcheck, loops
from convblocks.gradcheck import GradcheckResult

IMPLS = pytest.mark.parametrize("L", [course, loops], ids=["fast", "loops"])


@IMPLS
@pytest.mark.parametrize("stride, pad, f", [(1, 0, 3), (2, 1, 3), (3, 2, 2), (2, 0, 1), (1, 2, 4)])
def test_conv_backward(L, stride, pad, f):
    rng = np.random.default_rng(stride * 10 + pad)
    A = rng.standard_normal((2, 5, 6, 2))
    W = rng.standard_normal((f, f, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad}
    result = gradcheck(lambda a, w, bb: L.conv_forward(a, w, bb, hp)[0], (A, W, b),
                       lambda dZ: L.conv_backward(dZ, (A, W, b, hp)), max_points=200)
    assert result.max_rel_error < 1e-6, result


@IMPLS
@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride", [(2, 1), (2, 2), (3, 2), (2, 3), (1, 1)])
def test_pool_backward(L, mode, f, stride):
    rng = np.random.default_rng(f * 10 + stride)
    A = rng.permutation(2 * 6 * 7 * 2).reshape(2, 6, 7, 2) / 10.0  # distinct values: no ties
    hp = {"f": f, "stride": stride}
    result = gradcheck(lambda a: L.pool_forward(a, hp, mode=mode)[0], (A,),
                       lambda dA: (L.pool_backward(dA, (A, hp), mode=mode),), eps=1e-4)
    assert result.max_rel_error < 1e-6, result


def test_gradcheck_reports_a_wrong_gradient_and_where():
    x = np.array([1.0, 2.0, 3.0])
    wrong = lambda dy: (dy * 2 * x + np.array([0.0, 0.5, 0.0]),)  # noqa: E731
    result = gradcheck(lambda v: v ** 2, (x,), wrong, upstream=np.ones(3))
    assert isinstance(result, GradcheckResult)
    assert result.index == (1,) and result.argument == 0
    assert result.numeric == pytest.approx(4.0, rel=1e-8) and result.analytic == pytest.approx(4.5)
    assert result.max_rel_error == pytest.approx(0.5 / 4.5, rel=1e-6)
    assert "index (1,)" in str(result)


def test_gradcheck_samples_large_inputs_and_checks_arguments():
    x = np.random.default_rng(0).standard_normal(5000)
    result = gradcheck(np.sin, x, lambda dy: (dy * np.cos(x),), max_points=50)
    assert result.checked == 50 and result.max_rel_error < 1e-7
    with pytest.raises(ValueError, match="upstream"):
        gradcheck(np.sin, x, lambda dy: (dy,), upstream=np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        gradcheck(np.sin, x, lambda dy: (dy[:10],))
    with pytest.raises(TypeError, match="func"):
        gradcheck(3, x, lambda dy: (dy,))


def test_package_gradcheck_stays_callable_after_importing_its_module():
    """``from convblocks.gradcheck import ...`` makes Python bind ``convblocks.gradcheck``
    to the submodule; it must still check gradients (fresh interpreter: import order)."""
    import subprocess
    import sys
    code = ("from convblocks.gradcheck import GradcheckResult\n"
            "import numpy as np, convblocks as cb\n"
            "x = np.array([1.0, 2.0])\n"
            "r = cb.gradcheck(lambda a: a ** 2, x, lambda d: [2 * x * d])\n"
            "assert isinstance(r, GradcheckResult) and r.max_rel_error < 1e-6, r\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("view", [lambda a: a, lambda a: a.T, lambda a: a[1:, ::2]],
                         ids=["identity", "transpose", "slice"])
def test_gradcheck_an_output_that_is_a_view_of_the_input(view):
    """The output of the +eps call must not change when the input is nudged to -eps."""
    x = np.random.default_rng(0).standard_normal((3, 4))

    def grads(dy):
        g = np.zeros_like(x)
        view(g)[...] = dy
        return (g,)

    result = gradcheck(view, x, grads)
    assert result.max_rel_error < 1e-8, result
    assert result.checked == 12


def test_gradcheck_a_func_that_reuses_its_output_buffer():
    buf = np.empty(3)

    def f(a):
        np.multiply(a, 3.0, out=buf)
        return buf

    x = np.array([1.0, -2.0, 0.5])
    result = gradcheck(f, x, lambda dy: (3.0 * dy,))
    assert result.max_rel_error < 1e-8, result


def test_gradcheck_a_func_that_modifies_its_input_in_place():
    def f(a):
        a *= 2.0
        return a ** 2          # y = 4 x^2

    x = np.array([1.0, -2.0, 0.5])
    result = gradcheck(f, x, lambda dy: (8.0 * x * dy,))
    assert result.max_rel_error < 1e-8, result
    assert x.tolist() == [1.0, -2.0, 0.5]


def test_gradcheck_a_backward_that_overwrites_its_dy_is_still_caught():
    """``L`` uses the dy drawn before grads ran: a wrong gradient that also zeroes dy in
    place must be reported, not compared against a numeric side computed with dy = 0."""
    x = np.array([1.0, -2.0, 0.5])

    def wrong(dy):
        dy[...] = 0.0
        return (dy,)              # the true gradient is 2 x dy

    up = np.ones(3)
    result = gradcheck(lambda a: a ** 2, x, wrong, upstream=up)
    assert result.max_rel_error == pytest.approx(1.0)
    assert result.index == (0,) and result.numeric == pytest.approx(2.0, rel=1e-8)
    assert up.tolist() == [1.0, 1.0, 1.0]


def test_gradcheck_warns_when_func_computes_in_float32():
    x = np.random.default_rng(0).standard_normal(5)
    f32 = lambda a: a.astype(np.float32) ** 2  # noqa: E731
    with pytest.warns(RuntimeWarning, match="float32"):
        gradcheck(f32, x, lambda dy: (2 * x * dy,))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gradcheck(f32, x, lambda dy: (2 * x * dy,), eps=1e-2)   # a fitting step
        assert gradcheck(lambda a: a ** 2, x.astype(np.float32),
                         lambda dy: (2 * x * dy,)).max_rel_error < 1e-6  # float64 inside
    assert result.max_rel_error < 1e-2


def test_gradcheck_skips_empty_inputs_and_refuses_when_all_are():
    x = np.array([1.0, 2.0])
    e = np.zeros((0, 3))
    result = gradcheck(lambda a, b: a * 2 + b.sum(), (x, e),
                       lambda dy: (2 * dy, np.full((0, 3), dy.sum())))
    assert result.checked == 2 and result.max_rel_error < 1e-8
    with pytest.raises(ValueError, match=r"empty.*\(0, 3\)"):
        gradcheck(lambda b: b * 2, e, lambda dy: (2 * dy,))


def test_gradcheck_refuses_bad_arguments_clearly():
    x = np.array([1.0, 2.0])
    ok = lambda dy: (2 * dy,)  # noqa: E731
    with pytest.raises(ValueError, match=r"wrt .*0\.\.0.*\[3\]"):
        gradcheck(lambda a: 2 * a, x, ok, wrt=[3])
    with pytest.raises(ValueError, match="wrt"):
        gradcheck(lambda a: 2 * a, x, ok, wrt=[-1])
    with pytest.raises(ValueError, match="wrt"):
        gradcheck(lambda a: 2 * a, x, ok, wrt=[0, 0])
    with pytest.raises(ValueError, match="eps.*inf"):
        gradcheck(lambda a: 2 * a, x, ok, eps=float("inf"))
    with pytest.raises(TypeError, match="seed"):
        gradcheck(lambda a: 2 * a, x, ok, seed="a")
    with pytest.raises(TypeError, match="grads must give a sequence.*NoneType"):
        gradcheck(lambda a: 2 * a, x, lambda dy: None)


def test_gradcheck_leaves_the_callers_arrays_alone_when_func_raises():
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(a):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return a * 2

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(f, x, lambda dy: (2 * dy,))
    assert x.tolist() == [1.0, 2.0, 3.0]


def _two_inputs():
    """``y = a * sum(b)`` at a 2-vector ``a`` and a 1-vector ``b``, with its gradients."""
    a, b = np.array([1.0, 2.0]), np.array([3.0])
    return (lambda a_, b_: a_ * b_.sum()), (a, b), (lambda dy: (dy * b.sum(), np.array([dy @ a])))


@pytest.mark.parametrize("extra", [np.zeros(2), None], ids=["array", "None"])
def test_gradcheck_refuses_more_gradients_than_inputs(extra):
    """An extra gradient was ignored: a backward returning (dA, dW, db) checked against
    (A, W) passed without a word, whatever its third item was."""
    f, xs, good = _two_inputs()
    with pytest.raises(ValueError, match=r"grads must give one gradient per input.*expected 2, "
                                         r"as inputs holds 2 arrays; got 3 gradients"):
        gradcheck(f, xs, lambda dy: (*good(dy), extra))
    with pytest.raises(ValueError, match=r"expected 1, as inputs holds 1 array; got 2"):
        gradcheck(lambda a: 2 * a, xs[0], lambda dy: (2 * dy, 2 * dy))
    with pytest.raises(ValueError, match=r"expected 2.*got 3"):   # precomputed, not a callable
        up = np.ones(2)
        gradcheck(f, xs, [*good(up), extra], upstream=up)
    assert gradcheck(f, xs, good).max_rel_error < 1e-8


def test_gradcheck_refuses_fewer_gradients_or_wrong_shapes_and_types_before_differencing():
    f, xs, good = _two_inputs()
    calls = []

    def counting(a, b):
        calls.append(1)
        return f(a, b)

    with pytest.raises(ValueError, match=r"expected 2, as inputs holds 2 arrays; got 1 gradients"):
        gradcheck(counting, xs, lambda dy: good(dy)[:1])
    # Gradient 1 is wrong: refused before input 0 is differenced (one call of func: y0).
    calls.clear()
    with pytest.raises(ValueError, match=r"grads must give gradient 1 in the shape of input 1, "
                                         r"\(1,\); got shape \(2,\)"):
        gradcheck(counting, xs, lambda dy: (good(dy)[0], np.ones(2)))
    assert len(calls) == 1
    for bad, message in ((lambda dy: {"a": 1, "b": 2}, "sequence of gradients.*got dict"),
                         (lambda dy: "ab", "sequence of gradients.*got str"),
                         (lambda dy: 3.0, "sequence of gradients.*got float"),
                         (lambda dy: ([None, 1.0], good(dy)[1]), "real numbers; gradient 0 is "
                                                                 "list of dtype object"),
                         (lambda dy: ([[1.0], [1.0, 2.0]], good(dy)[1]), "gradient 0 is list"),
                         (lambda dy: (good(dy)[0] + 0j, good(dy)[1]), "complex128")):
        with pytest.raises(TypeError, match=message):
            gradcheck(f, xs, bad)
    with pytest.raises(ValueError, match=r"wrt names input 1 but grads gave None.*\(1,\)"):
        gradcheck(f, xs, lambda dy: (good(dy)[0], None), wrt=[1])
