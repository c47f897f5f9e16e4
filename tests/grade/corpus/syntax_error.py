# A submission that does not compile: every function is reported as an error that
# names the SyntaxError, and grading goes on to the next file.
import numpy as np


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))


def conv_single_step(a_slice_prev, W, b):
    return float(np.sum(a_slice_prev * W) + b.item())
