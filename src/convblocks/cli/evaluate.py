"""``convblocks evaluate MODEL``: test accuracy and a per-class table of a saved model.

The data set, class names and layout default to what ``convblocks train`` stored in
the model file (``model.extra``); ``--dataset`` and ``--data-dir`` override them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from convblocks.cli.argtypes import positive_int

HELP = "test a saved model: accuracy and a per-class table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file written by `convblocks train` (model.npz)")
    parser.add_argument("--dataset", choices=("fashion-mnist", "mnist", "signs"),
                        help="data set (default: the one the model was trained on)")
    parser.add_argument("--data-dir", help="folder holding the data set's files")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="which split to evaluate (default test)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="default 256")


def model_layout(model) -> str:
    """The model's activation layout: its first layer's ``data_format`` (NHWC default)."""
    for layer in model.layers:
        fmt = getattr(layer, "data_format", None)
        if fmt is not None:
            return fmt
    return "NHWC"


def class_names(model, count: int) -> list[str]:
    """Class names stored by ``convblocks train`` (a model's ``classes``, or a
    checkpoint's data set), else ``'0' .. str(count - 1)``."""
    from convblocks.datasets import CLASS_NAMES

    extra = getattr(model, "extra", None) or {}
    names = extra.get("classes")
    if names is None and isinstance(extra.get("options"), dict):  # a checkpoint
        names = CLASS_NAMES.get(extra["options"].get("dataset"))
    if isinstance(names, (list, tuple)) and len(names) == count:
        return [str(n) for n in names]
    return [str(i) for i in range(count)]


def per_class_table(cm: np.ndarray, classes: list[str]) -> tuple[list[dict], str]:
    """Precision, recall and support per class from a confusion matrix (rows = true).

    Returns the rows as dicts (JSON-ready) and as an aligned text table.
    """
    rows, lines = [], [f"{'class':<14}{'precision':>10}{'recall':>9}{'support':>9}"]
    for i, name in enumerate(classes):
        predicted, support = int(cm[:, i].sum()), int(cm[i].sum())
        precision = cm[i, i] / predicted if predicted else 0.0
        recall = cm[i, i] / support if support else 0.0
        rows.append({"class": name, "precision": float(precision), "recall": float(recall),
                     "support": support})
        lines.append(f"{name:<14}{precision:>10.3f}{recall:>9.3f}{support:>9d}")
    return rows, "\n".join(lines)


def evaluate_model(model, x: np.ndarray, y: np.ndarray, classes: list[str], *,
                   batch_size: int = 256) -> dict[str, Any]:
    """Accuracy, cross-entropy, confusion matrix and per-class table in ONE pass.

    Parameters
    ----------
    model : convblocks.nn.Sequential
        A classifier; ``predict`` gives probabilities (N, K).
    x : numpy.ndarray
        Images in the model's layout, (N, *model.input_shape).
    y : numpy.ndarray
        int labels (N,).
    classes : list of str
        K class names.

    Returns
    -------
    dict
        ``accuracy``, ``loss`` (mean -log p[true class]), ``probs`` (N, K), ``cm``
        (K, K), ``per_class`` (list of dicts) and ``table`` (text).
    """
    from convblocks.plots import confusion_matrix

    from convblocks.nn.losses import log_softmax

    logits = model.predict(x, batch_size=batch_size, raw=True)
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"the model outputs shape {logits.shape[1:]}; expected {len(classes)} "
                         f"class probabilities for this data set")
    probs = model.output_transform(logits)
    pred = probs.argmax(axis=1)
    # from the logits: exact even where a probability underflows to 0
    loss = float(-np.mean(log_softmax(logits)[np.arange(len(y)), y]))
    cm = confusion_matrix(y, pred, len(classes))
    rows, table = per_class_table(cm, classes)
    return {"accuracy": float(np.mean(pred == y)), "loss": loss, "probs": probs, "cm": cm,
            "per_class": rows, "table": table}


def run(args: argparse.Namespace) -> int:
    from convblocks.datasets import CLASS_NAMES, load_dataset
    from convblocks.nn import load_model

    from .train import to_layout

    try:
        model = load_model(args.model)
    except (FileNotFoundError, ValueError) as exc:
        print(f"convblocks evaluate: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder, no permission, ...
        print(f"convblocks evaluate: error: {args.model}: cannot read it ({exc.strerror or exc}); "
              f"expected a model file written by `convblocks train` (model.npz)", file=sys.stderr)
        return 1
    extra = getattr(model, "extra", None) or {}
    dataset = args.dataset or extra.get("dataset") or "fashion-mnist"
    try:
        train, test = load_dataset(dataset, args.data_dir)
    except (ImportError, OSError, ValueError) as exc:
        print(f"convblocks evaluate: error: {exc}", file=sys.stderr)
        return 1
    x, y = test if args.split == "test" else train
    x = to_layout(x, model_layout(model))
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        print(f"convblocks evaluate: error: {dataset} images have shape {x.shape[1:]} but the "
              f"model expects {tuple(model.input_shape)}", file=sys.stderr)
        return 1
    classes = list(CLASS_NAMES[dataset])
    try:
        result = evaluate_model(model, x, y, classes, batch_size=args.batch_size)
    except ValueError as exc:  # e.g. a model with another number of classes
        print(f"convblocks evaluate: error: {args.model} does not fit {dataset}: {exc}",
              file=sys.stderr)
        return 1
    print(f"{args.model}: {dataset} {args.split} accuracy {result['accuracy']:.2%} "
          f"(loss {result['loss']:.4f}) on {len(y)} images\n{result['table']}")
    return 0
