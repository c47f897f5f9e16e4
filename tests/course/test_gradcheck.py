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
