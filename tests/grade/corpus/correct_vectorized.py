# A correct submission without per-pixel loops: NumPy slicing over whole batches.
import numpy as np


def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def conv_single_step(a_slice_prev, W, b):
    return float(np.sum(a_slice_prev * W) + np.squeeze(b))


def conv_forward(A_prev, W, b, hparameters):
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f = W.shape[0]
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    A_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, W.shape[3])) + b
    for p in range(f):
        for q in range(f):
            rows = A_pad[:, p:p + stride * (n_H - 1) + 1:stride, q:q + stride * (n_W - 1) + 1:stride, :]
            Z += np.tensordot(rows, W[p, q], axes=([3], [0]))  # (m,n_H,n_W,C) . (C,K)
    return Z, (A_prev, W, b, hparameters)


def pool_forward(A_prev, hparameters, mode="max"):
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    windows = np.stack([A_prev[:, p:p + stride * (n_H - 1) + 1:stride, q:q + stride * (n_W - 1) + 1:stride, :]
                        for p in range(f) for q in range(f)])
    A = windows.max(axis=0) if mode == "max" else windows.mean(axis=0)
    return A, (A_prev, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H, n_W, K = dZ.shape
    f = W.shape[0]
    A_pad = zero_pad(A_prev, pad)
    dA_pad = np.zeros(A_pad.shape)
    dW = np.zeros(W.shape)
    for p in range(f):
        for q in range(f):
            rows = (slice(None), slice(p, p + stride * (n_H - 1) + 1, stride),
                    slice(q, q + stride * (n_W - 1) + 1, stride), slice(None))
            dA_pad[rows] += np.tensordot(dZ, W[p, q], axes=([3], [1]))
            dW[p, q] = np.tensordot(A_pad[rows], dZ, axes=([0, 1, 2], [0, 1, 2]))
    db = dZ.sum(axis=(0, 1, 2)).reshape(b.shape)
    dA_prev = dA_pad[:, pad:pad + A_prev.shape[1], pad:pad + A_prev.shape[2], :]
    return dA_prev, dW, db


def create_mask_from_window(x):
    return np.arange(x.size).reshape(x.shape) == np.argmax(x)


def distribute_value(dz, shape):
    return np.full(shape, dz / (shape[0] * shape[1]))


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            if mode == "max":
                flat = window.reshape(m, f * f, n_C)
                first = flat.argmax(axis=1)[:, None, :] == np.arange(f * f)[None, :, None]
                share = first.reshape(window.shape) * dA[:, h:h + 1, w:w + 1, :]
            else:
                share = np.broadcast_to(dA[:, h:h + 1, w:w + 1, :] / (f * f), window.shape)
            dA_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :] += share
    return dA_prev
