"""``convblocks predict MODEL IMAGE...``: the top classes of PNG or .npy images.

PNG (or any format Pillow reads) is converted to the model's channels (grayscale or
RGB) and resized to its input size with a note; values are scaled to [0, 1] by the
image's bit depth (8-bit by 255, 16-bit by 65535; float images must already be in
[0, 1]). A .npy file holds one image (H, W) or (H, W, C), or a batch (N, H, W, C), in
NHWC order and at the model's size; uint8 values are divided by 255, uint16 by 65535,
other integers must be 0..255 (divided by 255), floats must already be in [0, 1].
Fashion-MNIST shows light objects on black: ``--invert`` flips dark-on-light photos.
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


class PixelRangeError(ValueError):
    """Pixel values outside the range their type allows (the message names the file)."""


def scale_pixels(arr: np.ndarray, source: str) -> np.ndarray:
    """Pixel values -> float32 in [0, 1], by the dtype's range; a ValueError otherwise.

    uint8 is divided by 255 and uint16 by 65535 (their full ranges); other integer
    dtypes must hold 8-bit values 0..255 (divided by 255); floats must already be in
    [0, 1]. ``source`` names the file in the messages.
    """
    if arr.dtype.kind not in "uif":
        raise ValueError(f"{source}: expected numbers; got dtype {arr.dtype}")
    if arr.dtype == np.uint8:
        return np.divide(arr, 255, dtype=np.float32)
    if arr.dtype == np.uint16:
        return np.divide(arr, 65535, dtype=np.float32)
    if arr.size == 0:
        return arr.astype(np.float32)
    lo, hi = arr.min(), arr.max()
    if arr.dtype.kind in "ui":
        if lo < 0 or hi > 255:
            raise PixelRangeError(f"{source}: {arr.dtype} values must be pixel values 0..255; "
                                  f"got {lo}..{hi} (save uint8 0..255, uint16 0..65535 or "
                                  f"floats in [0, 1])")
        return np.divide(arr, 255, dtype=np.float32)
    if not (lo >= 0 and hi <= 1):  # also rejects NaN
        raise PixelRangeError(f"{source}: {arr.dtype} values must be in [0, 1]; got "
                              f"{lo:g}..{hi:g} (divide by the maximum, e.g. 255, first)")
    return arr.astype(np.float32)


def _pil_pixels(img, h: int, w: int, c: int, source: str):
    """A Pillow image -> (float32 (H, W, C) in [0, 1], resize note or None).

    8-bit modes are converted by Pillow; 16-bit ("I;16*", and "I" as 16-bit PNGs load)
    and float ("F") grayscale are scaled from their own range, never clipped to 8 bits.
    """
    from PIL import Image

    note = None
    if img.size != (w, h):
        note = f"resized from {img.size[0]}x{img.size[1]} to {w}x{h}"
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        raw = np.asarray(img)
        if img.mode == "I":  # 32-bit integers: a 16-bit image's values 0..65535
            if raw.size and (raw.min() < 0 or raw.max() > 65535):
                raise PixelRangeError(f"{source}: 32-bit image values must be 16-bit pixel "
                                      f"values 0..65535; got {raw.min()}..{raw.max()}")
            raw = raw.astype(np.uint16)
        elif img.mode != "F":
            raw = raw.astype(np.uint16)  # "I;16B" and friends: native byte order
        x = scale_pixels(raw, source)
        if note:
            x = np.asarray(Image.fromarray(x, mode="F").resize((w, h), Image.BILINEAR))
        x = np.clip(x, 0.0, 1.0)[..., None]
        return (np.repeat(x, c, axis=-1) if c != 1 else x), note
    img = img.convert("L" if c == 1 else "RGB")
    if note:
        img = img.resize((w, h), Image.BILINEAR)
    x = np.divide(np.asarray(img, dtype=np.uint8), 255, dtype=np.float32)
    return x.reshape(h, w, c), note


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
            with open(path, "rb") as f:
                # np.load takes what is not .npy for a pickle (or an .npz archive)
                if f.read(6) != b"\x93NUMPY":
                    raise ValueError("no .npy header: expected an array saved with np.save")
                f.seek(0)
                arr = np.lib.format.read_array(f, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
        x = scale_pixels(arr, str(path))
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            raise ValueError(f"{path}: expected an image (H, W) / (H, W, C) or a batch "
                             f"(N, H, W, C) with (H, W, C) = {(h, w, c)}; got shape {arr.shape}")
        if not len(x):  # an empty batch would print nothing and succeed
            raise ValueError(f"{path}: expected at least one image; got shape {arr.shape}")
        return x, None
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install 'convblocks[cli]' "
                          "(or pass .npy files)") from None
    try:
        with Image.open(path) as img:
            x, note = _pil_pixels(img, h, w, c, str(path))
    except PixelRangeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path}: image too large to read safely ({exc})") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:  # Pillow's own
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    return x[None], (f"note: {path} {note}" if note else None)


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
    except OSError as exc:  # a folder, no permission, ...
        print(f"convblocks predict: error: {args.model}: cannot read it ({exc.strerror or exc}); "
              f"expected a model file written by `convblocks train` (model.npz)", file=sys.stderr)
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
