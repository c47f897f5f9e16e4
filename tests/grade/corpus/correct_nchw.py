# A correct submission in another course's conventions: NCHW activations, OIHW
# weights (n_C, n_C_prev, f, f), bias (n_C, 1, 1, 1). Grade with
# --layout NCHW --weights OIHW; with the defaults it must fail with a layout hint.
import numpy as np


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def conv_single_step(a_slice_prev, W, b):
    return float(np.sum(a_slice_prev * W) + b.item())


def conv_forward(A_prev, W, b, hparameters):
    m, n_C_prev, n_H_prev, n_W_prev = A_prev.shape
    n_C, _, f, _ = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    A_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_C, n_H, n_W))
    for i in range(m):
        for c in range(n_C):
            for h in range(n_H):
                for w in range(n_W):
                    window = A_pad[i, :, h * stride:h * stride + f, w * stride:w * stride + f]
                    Z[i, c, h, w] = conv_single_step(window, W[c], b[c])
    return Z, (A_prev, W, b, hparameters)


def pool_forward(A_prev, hparameters, mode="max"):
    m, n_C, n_H_prev, n_W_prev = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_C, n_H, n_W))
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, :, h * stride:h * stride + f, w * stride:w * stride + f]
            A[:, :, h, w] = window.max(axis=(2, 3)) if mode == "max" else window.mean(axis=(2, 3))
    return A, (A_prev, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_C, n_H, n_W = dZ.shape
    f = W.shape[2]
    A_pad = zero_pad(A_prev, pad)
    dA_pad = np.zeros(A_pad.shape)
    dW = np.zeros(W.shape)
    db = np.zeros(b.shape)
    for i in range(m):
        for c in range(n_C):
            for h in range(n_H):
                for w in range(n_W):
                    rows = (slice(None), slice(h * stride, h * stride + f), slice(w * stride, w * stride + f))
                    dA_pad[i][rows] += W[c] * dZ[i, c, h, w]
                    dW[c] += A_pad[i][rows] * dZ[i, c, h, w]
                    db[c] += dZ[i, c, h, w]
    H, Wd = A_prev.shape[2], A_prev.shape[3]
    return dA_pad[:, :, pad:pad + H, pad:pad + Wd], dW, db


def create_mask_from_window(x):
    mask = np.zeros(x.shape, dtype=bool)
    mask.flat[np.argmax(x)] = True
    return mask


def distribute_value(dz, shape):
    n_H, n_W = shape
    return np.ones(shape) * dz / (n_H * n_W)


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_C, n_H, n_W = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for i in range(m):
        for c in range(n_C):
            for h in range(n_H):
                for w in range(n_W):
                    rows = (i, c, slice(h * stride, h * stride + f), slice(w * stride, w * stride + f))
                    if mode == "max":
                        dA_prev[rows] += create_mask_from_window(A_prev[rows]) * dA[i, c, h, w]
                    else:
                        dA_prev[rows] += distribute_value(dA[i, c, h, w], (f, f))
    return dA_prev
