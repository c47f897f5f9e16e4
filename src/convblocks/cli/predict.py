"""``convblocks predict MODEL IMAGE...``: the top classes of PNG or .npy images.

PNG (or any format Pillow reads) is converted to the model's channels (grayscale or
RGB) and resized to its input size with a note; values are scaled to [0, 1]. A .npy
file holds one image (H, W) or (H, W, C), or a batch (N, H, W, C), in NHWC order and
at the model's size; uint8 values are divided by 255, float values are used as they
are. Fashion-MNIST shows light objects on black: ``--invert`` flips dark-on-light
photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HELP = "classify PNG or .npy images with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file written by `convblocks train` (model.npz)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG or .npy files")
    parser.add_argument("--top", type=int, default=3, help="classes to show per image (default 3)")
    parser.add_argument("--invert", action="store_true",
                        help="use 1 - pixel (for dark objects on a light background)")


def _input_hwc(model, layout: str) -> tuple[int, int, int]:
    shape = tuple(model.input_shape)
    if len(shape) != 3:
        raise ValueError(f"the model takes inputs of shape {shape}, not images")
    return shape if layout == "NHWC" else (shape[1], shape[2], shape[0])


def load_image(path: Path, hwc: tuple[int, int, int]) -> tuple[np.ndarray, str | None]:
    """One image file as float32 NHWC (n, H, W, C) in [0, 1] and an optional note.

    Parameters
    ----------
    path : pathlib.Path
        ``.npy`` or an image format Pillow reads.
    hwc : (H, W, C)
        The model's input size.
    """
    h, w, c = hwc
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        if arr.dtype.kind not in "uif":
            raise ValueError(f"{path}: expected numbers; got dtype {arr.dtype}")
        x = np.divide(arr, 255, dtype=np.float32) if arr.dtype == np.uint8 else arr.astype(np.float32)
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            raise ValueError(f"{path}: expected an image (H, W) / (H, W, C) or a batch "
                             f"(N, H, W, C) with (H, W, C) = {(h, w, c)}; got shape {arr.shape}")
        return x, None
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install 'convblocks[cli]' "
                          "(or pass .npy files)") from None
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            note = None
            if img.size != (w, h):
                note = f"note: {path} resized from {img.size[0]}x{img.size[1]} to {w}x{h}"
                img = img.resize((w, h), Image.BILINEAR)
            x = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    x = np.divide(x, 255, dtype=np.float32).reshape(1, h, w, c)
    return x, note


def run(args: argparse.Namespace) -> int:
    from convblocks.nn import load_model

    from .evaluate import class_names, model_layout

    if args.top < 1:
        print(f"convblocks predict: error: --top must be >= 1; got {args.top}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model)
        layout = model_layout(model)
        hwc = _input_hwc(model, layout)
    except (FileNotFoundError, ValueError) as exc:
        print(f"convblocks predict: error: {exc}", file=sys.stderr)
        return 1
    status = 0
    for name in args.images:
        path = Path(name)
        try:
            x, note = load_image(path, hwc)
        except (ImportError, ValueError, FileNotFoundError) as exc:
            print(f"convblocks predict: error: {exc}", file=sys.stderr)
            status = 1
            continue
        if note:
            print(note)
        if args.invert:
            x = 1.0 - x
        if layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        probs = model.predict(x)
        classes = class_names(model, probs.shape[1])
        for i, p in enumerate(probs):
            top = np.argsort(-p, kind="stable")[:args.top]
            label = name if len(probs) == 1 else f"{name}[{i}]"
            print(f"{label}: " + ", ".join(f"{classes[k]} {p[k]:.1%}" for k in top))
    return status
