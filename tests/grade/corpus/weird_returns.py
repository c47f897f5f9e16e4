# Functions that return the wrong kinds of things, or take the wrong arguments: the
# grader must judge each (fail / error) without crashing itself.
import numpy as np


class Loud:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def zero_pad(X, pad):
    return X.tolist()


def conv_single_step(a_slice_prev, W, b):
    return np.squeeze(np.sum(a_slice_prev * W) + b)  # a 0-d array, not a float


def create_mask_from_window(x):
    return Loud()


def distribute_value(dz, shape):
    return {"value": dz}


def conv_forward(A_prev, W, b, hparameters):
    return None


def pool_forward(A_prev, hparameters):  # no mode argument
    return A_prev, (A_prev, hparameters)


def conv_backward(dZ, cache):
    return "dA_prev", np.matrix([[1.0]]), float("nan")


def pool_backward(dA, cache, mode="max"):
    return np.full(cache[0].shape, np.nan)
