"""Option parsing and layout conversions of the grader."""

from __future__ import annotations

import numpy as np
import pytest

from convblocks.grade.conventions import Conventions, name_tokens


def test_options_parse_and_bad_options_name_the_option():
    conv = Conventions.from_options(map="conv_forward=forward_conv", keys="pad=padding,f=filt_size",
                                    modes="max=maxpool", layout="nchw", weights="oihw")
    assert conv.name("conv_forward") == "forward_conv" and conv.name("zero_pad") == "zero_pad"
    assert conv.hparameters({"stride": 2, "pad": 1}) == {"stride": 2, "padding": 1}
    assert conv.mode("max") == "maxpool" and conv.mode("average") == "average"
    for kwargs, fragment in [({"map": "conv=x"}, "--map"), ({"keys": "pad"}, "--keys"),
                             ({"modes": "mean=avg"}, "--modes"), ({"layout": "CHWN"}, "--layout"),
                             ({"weights": "WHIO"}, "--weights"), ({"map": "conv_forward=1x"}, "--map")]:
        with pytest.raises(ValueError, match=fragment):
            Conventions.from_options(**kwargs)


@pytest.mark.parametrize("layout,weights", [("NCHW", "OIHW"), ("NCHW", "IOHW"), ("NHWC", "HWIO")])
def test_conversions_round_trip(layout, weights):
    conv = Conventions(layout=layout, weights=weights)
    rng = np.random.default_rng(0)
    A, W, b = rng.normal(size=(2, 5, 4, 3)), rng.normal(size=(3, 3, 3, 6)), rng.normal(size=(1, 1, 1, 6))
    args = conv.call_args("conv_forward", {"A_prev": A, "W": W, "b": b,
                                           "hparameters": {"stride": 1, "pad": 0}})
    n_C_axis = {"HWIO": 3, "OIHW": 0, "IOHW": 1}[weights]
    assert args[1].shape[n_C_axis] == 6 and args[2].shape[n_C_axis] == 6 and args[2].size == 6
    back = conv.result_from("conv_backward", (args[0], args[1], args[2]))
    assert all(np.array_equal(x, y) for x, y in zip(back, (A, W, b)))


def test_name_tokens():
    assert name_tokens("forwardConv") == name_tokens("conv_forward") == {"conv", "forward"}
