"""Layers, losses, optimizers, schedules and a Keras-style ``Sequential`` model.

Every convolution and pooling layer calls :mod:`convblocks.functional`; Dense is a
matmul. Quick start::

    from convblocks import nn
    model = nn.Sequential([
        nn.Conv2D(32, 3, padding="same"), nn.BatchNorm2D(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Dense(10)], input_shape=(28, 28, 1), seed=0)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam(lr=1e-3))
    history = model.fit(x, y, epochs=1, batch_size=64, seed=0)
    model.save("model.npz"); model = nn.load_model("model.npz")

See ``docs/nn.md``.
"""

from .activations import LeakyReLU, ReLU
from .base import Layer, layer_from_config
from .initializers import glorot_normal, glorot_uniform, he_normal, he_uniform, initialize
from .layers import (AvgPool2D, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten,
                     GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D)
from .losses import MSE, Loss, SoftmaxCrossEntropy, log_softmax, softmax
from .model import Sequential, StopTraining
from .normalization import BatchNorm2D
from .optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from .schedules import CosineSchedule, Schedule, StepSchedule
from .serialization import FORMAT_VERSION, load_model, save_model

__all__ = [
    "Layer", "layer_from_config", "Conv2D", "ConvTranspose2D", "MaxPool2D", "AvgPool2D",
    "GlobalAvgPool2D", "GlobalMaxPool2D", "Flatten", "Dense", "Dropout", "ReLU", "LeakyReLU",
    "BatchNorm2D", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "initialize",
    "Loss", "SoftmaxCrossEntropy", "MSE", "softmax", "log_softmax",
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm",
    "Schedule", "StepSchedule", "CosineSchedule", "StopTraining",
    "Sequential", "save_model", "load_model", "FORMAT_VERSION",
]
