"""``convblocks train``: train a small CNN, report test accuracy, write model, metrics, plots.

Defaults (Fashion-MNIST, the CNN of :func:`build_model`, Adam with a cosine schedule,
6 epochs) reach about 91.7% test accuracy in about 2 minutes on two idle cores. A run
writes to ``--out`` (default ``runs/<timestamp>``; a new or empty folder, never an earlier
run's)::

    model.npz        the trained model (convblocks.load_model; includes the optimizer)
    checkpoint.npz   the state after the last completed epoch, or after the batch where
                     Ctrl-C stopped training (what --resume continues)
    metrics.json     test accuracy, per-class table, per-epoch history, timings, options
    curves.png filters.png confusion.png predictions.png

A run is bit-for-bit repeatable for a given ``--seed``: the weights come from the
seed and epoch ``e``'s shuffle and dropout from ``(seed, e)``. Ctrl-C finishes the
current mini-batch step, saves the checkpoint with the exact position (epoch, batches
done, the epoch's running sums and dropout generator) and exits with status 130; a
second Ctrl-C stops at once (the previous checkpoint survives: saves are atomic).
``--resume DIR`` continues from the checkpoint and produces exactly the numbers the
uninterrupted run would have. A diverging run (a loss or a weight NaN or infinite, e.g.
from a far too high ``--lr``) stops with one message and status 1, without NumPy's
overflow warnings; its checkpoint keeps the last finite state.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import shlex
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._atomic import write_json  # strict JSON, atomically (metrics.json)
from .argtypes import short_int

HELP = "train a small CNN on Fashion-MNIST (or MNIST, SIGNS) and report test accuracy"


def _default_threads() -> int:
    """BLAS threads of the default run: 2, or 1 on a single core.

    Measured on 2 cores (one process, alternating epochs): 21.4 ms per batch with 2
    BLAS threads, 27.2 with 1. More than 2 was never measured: the layers' products
    are small (K = 9 and 288 for the two convolutions).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(2, cores or 1))


#: The default run: ~91.7% on Fashion-MNIST in about 2 minutes on two cores (target: >= 91% in <= 5)
#: (docs/training.md lists the measurements behind these choices).
DEFAULTS: dict[str, Any] = {
    "dataset": "fashion-mnist", "data_dir": None, "epochs": 6, "batch_size": 64,
    "lr": 2e-3, "width": 32, "data_format": "NHWC", "limit": None, "val_size": 5000,
    "seed": 0, "threads": _default_threads(),
}
#: Options a resumed run takes from its checkpoint (the command line may not change them).
_RUN_OPTIONS = ("dataset", "epochs", "batch_size", "lr", "width", "data_format", "limit",
                "val_size", "seed", "threads")
CHECKPOINT = "checkpoint.npz"
MAX_THREADS = 1024  # BLAS takes a C int; OpenBLAS caps far lower
MAX_IMAGES = 100_000_000  # --limit, --val-size: the data sets hold 60,000 training images
#: Accepted range of each integer option, checked before any data is loaded or model
#: built. Far beyond any real run (a --width of 4096 already needs tens of GB), they
#: turn a typo such as ``--width 10**30`` into a message naming the option instead of
#: an allocation failure deep in the model, or an endless run.
INT_RANGES: dict[str, tuple[int, int]] = {
    "epochs": (1, 100_000), "batch_size": (1, 1_000_000), "width": (1, 4096),
    "limit": (1, MAX_IMAGES), "val_size": (0, MAX_IMAGES), "seed": (0, 2**63 - 1),
    "threads": (1, MAX_THREADS),
}
CLI_EXTRA = "pip install 'convblocks[cli]'"


class UsageError(Exception):
    """A bad option combination or missing prerequisite: printed without a traceback."""


class Diverged(Exception):
    """The training or validation loss, or the saved state, became NaN or infinite
    (raised by :class:`DivergenceGuard` and :meth:`Checkpoint.save`)."""


def _range(key: str) -> str:
    low, high = INT_RANGES[key]
    return f"{low} to {high}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    add = parser.add_argument
    add("--dataset", choices=("fashion-mnist", "mnist", "signs"),
        help=f"data set (default {d['dataset']})")
    add("--data-dir", metavar="DIR", help="folder holding the data set's files (default: "
        "$CONVBLOCKS_DATA, /usr/share/datasets, the cache, then download)")
    add("--epochs", type=int, metavar="N", help=f"training epochs, {_range('epochs')} "
        f"(default {d['epochs']})")
    add("--batch-size", type=int, metavar="N", help=f"images per training step, "
        f"{_range('batch_size')} (default {d['batch_size']})")
    add("--lr", type=float, help=f"Adam's peak learning rate, decayed by a cosine schedule "
        f"(default {d['lr']})")
    add("--width", type=int, metavar="N", help=f"filters of the first convolution; the second "
        f"has 2x, the dense layer 4x; {_range('width')} (default {d['width']})")
    add("--data-format", choices=("NHWC", "NCHW"),
        help=f"activation layout (default {d['data_format']})")
    add("--limit", type=int, metavar="N", help=f"train on the first N training images only, "
        f"{_range('limit')} (smoke tests)")
    add("--val-size", type=int, metavar="N", help=f"hold out the last N training images for "
        f"validation after each epoch; 0 = none; {_range('val_size')} "
        f"(default {d['val_size']})")
    add("--seed", type=int, metavar="N", help=f"seed of weights, shuffling and dropout, "
        f"{_range('seed')} (default {d['seed']})")
    add("--out", metavar="DIR", help="output folder: a new or empty one, never an earlier "
        "run's (default runs/<timestamp>)")
    add("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint (with "
        "its saved options, writing into DIR)")
    add("--threads", type=int, metavar="N", help=f"BLAS threads, {_range('threads')} "
        f"(default {d['threads']}; part of the run: the count changes the last bits of the "
        f"results)")
    add("--no-plots", action="store_true", help="skip the PNG figures")
    add("--quiet", action="store_true", help="no progress bar")


# --------------------------------------------------------------------------- model

def build_model(input_shape: tuple[int, ...], num_classes: int, *, width: int = 32,
                data_format: str = "NHWC", seed: int = 0):
    """The default CNN: two conv-BN-ReLU-pool stages, then two dense layers.

    ``Conv(w, 3x3, same) - BN - ReLU - MaxPool 2 - Conv(2w) - BN - ReLU - MaxPool 2 -
    Flatten - Dense(4w) - ReLU - Dropout 0.25 - Dense(classes)``. For 28x28 inputs and
    w = 32 that is about 420k parameters.

    Parameters
    ----------
    input_shape : tuple of int
        Per-example shape, (H, W, C) for NHWC or (C, H, W) for NCHW.
    num_classes : int
        Output logits.
    width : int
        Filters of the first convolution.
    data_format : {'NHWC', 'NCHW'}
    seed : int
        Seeds the weight initialization.
    """
    from convblocks import nn

    f = data_format
    return nn.Sequential([
        nn.Conv2D(width, 3, padding="same", use_bias=False, data_format=f),
        nn.BatchNorm2D(data_format=f), nn.ReLU(), nn.MaxPool2D(2, data_format=f),
        nn.Conv2D(2 * width, 3, padding="same", use_bias=False, data_format=f),
        nn.BatchNorm2D(data_format=f), nn.ReLU(), nn.MaxPool2D(2, data_format=f),
        nn.Flatten(), nn.Dense(4 * width), nn.ReLU(), nn.Dropout(0.25),
        nn.Dense(num_classes),
    ], input_shape=tuple(input_shape), seed=seed)


def compile_model(model, *, lr: float, total_steps: int) -> None:
    """Adam at peak ``lr`` with cosine decay to zero over ``total_steps`` updates."""
    from convblocks import nn

    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.Adam(lr=lr),
                  schedule=nn.CosineSchedule(total_steps=max(1, total_steps)), clip_norm=None)


# --------------------------------------------------------------------------- data

def to_layout(x: np.ndarray, data_format: str) -> np.ndarray:
    """NHWC images -> the model's layout (a contiguous copy for NCHW)."""
    return x if data_format == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def load_data(opts: dict) -> dict:
    """Load the data set and split it into training, validation and test arrays.

    Training is the first ``min(limit, total - val_size)`` training images; validation
    is the LAST ``val_size`` training images (disjoint from training); test is the
    official test set.
    """
    from convblocks.datasets import CLASS_NAMES, load_dataset

    try:
        (x, y), (xt, yt) = load_dataset(opts["dataset"], opts.get("data_dir"))
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    total, val = len(x), opts["val_size"]
    if val >= total:
        raise UsageError(f"--val-size {val} must be smaller than the {total} training images")
    n_train = total - val if opts["limit"] is None else opts["limit"]
    if n_train > total - val:
        raise UsageError(f"--limit {n_train} plus --val-size {val} exceed the {total} "
                         f"training images; lower one of them")
    fmt = opts["data_format"]
    data = {
        "x_train": to_layout(x[:n_train], fmt), "y_train": y[:n_train],
        "x_val": to_layout(x[total - val:], fmt) if val else None,
        "y_val": y[total - val:] if val else None,
        "x_test": to_layout(xt, fmt), "y_test": yt, "x_test_nhwc": xt,
        "classes": list(CLASS_NAMES[opts["dataset"]]),
    }
    data["fingerprint"] = data_fingerprint(data)
    return data


def data_fingerprint(data: dict) -> str:
    """A short digest of the split: its sizes, every label and 64 sampled images.

    Saved in the checkpoint, so that ``--resume --data-dir`` can tell the same data
    moved elsewhere (allowed) from other data (which would silently change the run).
    """
    import hashlib

    digest = hashlib.blake2b(digest_size=12)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a = data[key]
        if a is None:
            digest.update(f"{key}:none;".encode())
            continue
        digest.update(f"{key}:{a.shape}:{a.dtype.str};".encode())
        sample = a if key.startswith("y") else a[::max(1, len(a) // 64)]
        digest.update(np.ascontiguousarray(sample).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- callbacks

class ProgressBar:
    """A tqdm bar per epoch (images/s, running loss and accuracy) and a summary line."""

    def __init__(self, n_train: int, epochs: int, *, enabled: bool = True) -> None:
        self.n_train, self.epochs, self.enabled = n_train, epochs, enabled
        self.bar = None

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        if self.enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.n_train, initial=logs.get("seen", 0), unit="img",
                            unit_scale=False, leave=False,
                            desc=f"epoch {epoch + 1}/{self.epochs}", dynamic_ncols=True,
                            mininterval=0.5)

    def on_batch_end(self, batch: int, logs: dict) -> None:
        if self.bar is not None:
            # Postfix first (no redraw), then update(), which redraws at most every 0.5 s.
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", acc=f"{logs['accuracy']:.2%}",
                                 refresh=False)
            self.bar.update(logs["batch_size"])

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        line = (f"epoch {epoch + 1}/{self.epochs}: loss {logs['loss']:.4f}, accuracy "
                f"{logs['accuracy']:.2%}")
        if logs.get("val_loss") is not None:
            line += f" | val loss {logs['val_loss']:.4f}, val accuracy {logs['val_accuracy']:.2%}"
        line += f" | {logs['time']:.1f} s, {logs['images_per_s']:.0f} images/s"
        print(line, flush=True)


class Checkpoint:
    """Saves model + optimizer + history to ``out/checkpoint.npz`` after every epoch.

    :meth:`save` with a ``position`` (``model.epoch_state``) saves the state in the
    middle of an epoch (Ctrl-C). The save is atomic (``Sequential.save``), so an
    interrupt during it leaves the previous checkpoint intact. ``completed`` and
    ``position`` describe what the file holds.
    """

    def __init__(self, model, path: Path, opts: dict, history: dict,
                 position: dict | None = None, fingerprint: str | None = None) -> None:
        self.model, self.path, self.opts = model, path, opts
        self.fingerprint = fingerprint  # of the data (data_fingerprint), checked on resume
        self.history = {k: list(v) for k, v in history.items()}
        self.completed = len(self.history.get("loss", []))
        self.position = position

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "time", "images_per_s", "lr"):
            self.history.setdefault(key, []).append(logs.get(key))
        self.save(epoch + 1)

    def save(self, completed: int, position: dict | None = None) -> None:
        """Write the state after ``completed`` epochs (and ``position`` in the next).

        Raises
        ------
        Diverged
            A weight, BatchNorm statistic or optimizer slot is NaN or infinite (an
            update that overflowed while the loss of its batch was still finite): the
            file keeps the last good state instead.
        """
        bad = nonfinite_state(self.model)
        if bad is not None:
            where = (f"in epoch {completed + 1}" if position is not None
                     else f"after epoch {completed}")
            raise Diverged(f"{bad} became NaN or infinite {where}")
        extra = {"epoch": completed, "history": self.history, "options": self.opts,
                 "data": self.fingerprint}
        if position is not None:
            extra["position"] = position
        self.model.save(self.path, include_optimizer=True, extra=extra)
        self.completed, self.position = completed, position

    def describe(self) -> str | None:
        """What the file holds ("the state after ..."), or None when nothing was saved."""
        epochs = self.opts["epochs"]
        if self.position is not None:
            p = self.position
            return (f"the state after batch {p['batch']} of {p['batches']} in epoch "
                    f"{p['epoch'] + 1} of {epochs}")
        if self.completed:
            return f"the state after epoch {self.completed} of {epochs}"
        return None


class CtrlC:
    """Ctrl-C during ``fit``: finish the current step, then stop resumably.

    Used as a context manager around training, it replaces Python's SIGINT handler
    (only when that is the default one: an ignored SIGINT stays ignored). The first
    Ctrl-C sets ``requested`` and puts the previous handler back, so a second one
    raises KeyboardInterrupt at once, while the step finishes or the checkpoint is
    written. As a callback (last in the list) it raises ``StopTraining`` after the
    batch, or at an epoch's start or end, once Ctrl-C was pressed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "CtrlC":
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        # No printing here: the handler may run in the middle of a write to stderr.
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def _stop(self, *args: Any) -> None:
        if self.requested:
            from convblocks.nn.model import StopTraining
            raise StopTraining

    on_epoch_begin = on_batch_end = on_epoch_end = _stop


class DivergenceGuard:
    """Stops training as soon as the running loss (or the validation loss) is NaN or
    infinite.

    A diverged model is useless, and going on would save NaN weights over the last good
    checkpoint; raising from ``on_batch_end`` (or, for the validation loss, from
    ``on_epoch_end``, as the first callback) stops before the epoch's checkpoint. An
    update that makes the weights non-finite while its batch's loss is still finite is
    caught by :meth:`Checkpoint.save`.
    """

    def __init__(self) -> None:
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict) -> None:
        if not math.isfinite(logs["loss"]):
            raise Diverged(f"the training loss became {logs['loss']} at batch {batch + 1} of "
                           f"epoch {self.epoch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        val_loss = logs.get("val_loss")
        if val_loss is not None and not math.isfinite(val_loss):
            raise Diverged(f"the validation loss became {val_loss} after epoch {epoch + 1}")


def nonfinite_state(model) -> str | None:
    """The first NaN or infinite array of the model's saved state, named (``weight
    3.kernel``, ``BatchNorm statistic 1.running_var``, ``optimizer slot exp_avg/0.kernel``),
    or None when every value is finite."""
    groups = [("weight", model.params()), ("BatchNorm statistic", model.buffers())]
    if model.optimizer is not None:
        groups.append(("optimizer slot", model.optimizer.state_dict()))
    for kind, arrays in groups:
        for key, array in arrays.items():
            if not np.isfinite(array).all():
                return f"{kind} {key}"
    return None


#: NumPy's floating-point warnings (np.errstate covers only the calling thread, not the
#: engine's worker threads, so they are filtered by message).
_FLOAT_WARNINGS = r"(overflow|invalid value|divide by zero|underflow) encountered"


@contextlib.contextmanager
def quiet_float_errors() -> Iterator[None]:
    """Silence NumPy's overflow / invalid-value RuntimeWarnings, in every thread, while
    training: a diverging run reports once, through :class:`DivergenceGuard` and
    :meth:`Checkpoint.save`, instead of first printing a screen of warnings from the
    engine's internals."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _FLOAT_WARNINGS, RuntimeWarning)
        yield


# --------------------------------------------------------------------------- reports

def stderr_usable() -> bool:
    """Whether the progress bar can draw on stderr: not closed (``2>&-`` makes it None)."""
    stream = sys.stderr
    if stream is None or getattr(stream, "closed", False):
        return False
    try:
        stream.flush()
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _check_dependencies(opts: dict, *, plots: bool, progress: bool) -> None:
    needed = []
    if progress:
        needed.append("tqdm")
    if plots:
        needed.append("matplotlib")
    if opts["dataset"] == "signs":
        needed.append("h5py")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"missing optional dependenc{'ies' if len(missing) > 1 else 'y'} "
                         f"{', '.join(missing)}: {CLI_EXTRA}"
                         + (" (or pass --no-plots / --quiet)" if set(missing) - {"h5py"} else ""))
    if plots:
        # Installed is not enough: a bad MPLBACKEND or a broken install fails at import,
        # which must show now, not after training.
        try:
            importlib.import_module("matplotlib.figure")
            importlib.import_module("matplotlib.backends.backend_agg")
        except Exception as exc:  # noqa: BLE001 - any import-time failure is reported
            raise UsageError(f"matplotlib is installed but fails to import "
                             f"({type(exc).__name__}: {exc}); fix it or pass --no-plots") from None


def _thread_limit(threads: int):
    """A context manager limiting NumPy's BLAS to ``threads`` (threadpoolctl), or None
    when threadpoolctl is missing (a note is printed; BLAS keeps its own default)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"note: --threads {threads} not applied: limiting BLAS threads needs "
              f"threadpoolctl ({CLI_EXTRA})", file=sys.stderr)
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def _options(args: argparse.Namespace) -> dict | None:
    """The new run's options (defaults + command line), or None with --resume (whose
    options come from the checkpoint; only --data-dir may be given with it)."""
    given = {k: getattr(args, k) for k in (*_RUN_OPTIONS, "data_dir")
             if getattr(args, k, None) is not None}
    if args.resume is None:
        opts = {**DEFAULTS, **given}
        for key, (low, high) in INT_RANGES.items():
            value = opts[key]
            if value is not None and not low <= value <= high:
                raise UsageError(f"--{key.replace('_', '-')} must be from {low} to {high}; "
                                 f"got {short_int(value)}")
        if not (opts["lr"] > 0 and math.isfinite(opts["lr"])):
            raise UsageError(f"--lr must be a finite number > 0; got {opts['lr']}")
        return opts
    clash = sorted(set(given) - {"data_dir"})
    if args.out is not None:  # the resumed run writes into its own folder
        clash.append("out")
    if clash:
        flags = ", ".join("--" + k.replace("_", "-") for k in clash)
        raise UsageError(f"--resume continues a run with its saved options; drop {flags}")
    return None


def _check_out(out: Path) -> None:
    """Refuse an output folder that would mix with or overwrite earlier files.

    ``out`` must not exist or be an empty folder: an earlier run's model, checkpoint and
    metrics would be replaced (and its figures left beside the new ones).
    """
    if out.is_dir():
        try:
            with os.scandir(out) as entries:
                empty = next(entries, None) is None
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot read the folder ({exc.strerror}); expected "
                             f"a new or empty folder") from None
        if not empty:
            hint = (f", or continue that run with --resume {out}"
                    if (out / CHECKPOINT).is_file() else "")
            raise UsageError(f"--out {out}: the folder is not empty; expected a new or empty "
                             f"folder (nothing in it is overwritten): choose another --out{hint}")
    elif out.exists() or out.is_symlink():
        raise UsageError(f"--out {out}: a file of that name exists; expected a new or empty "
                         f"folder")


def _default_out() -> Path:
    """``runs/<timestamp>``, or ``runs/<timestamp>-2``, ... when that is already taken."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out, n = Path("runs") / stamp, 1
    while out.exists() or out.is_symlink():
        n += 1
        out = Path("runs") / f"{stamp}-{n}"
    return out


def _load_checkpoint(run_dir: Path):
    """The checkpoint's compiled model (optimizer state included) and its ``extra``."""
    from convblocks.nn import load_model

    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise UsageError(f"--resume {run_dir}: no {CHECKPOINT} there (a run saves one after "
                         f"each completed epoch)")
    try:
        model = load_model(path)
    except ValueError as exc:
        raise UsageError(f"--resume {run_dir}: {exc}") from None
    extra = model.extra
    if not isinstance(extra, dict) or "options" not in extra or "epoch" not in extra:
        raise UsageError(f"--resume {run_dir}: {CHECKPOINT} was not written by "
                         f"`convblocks train` (no options/epoch in it)")
    position = extra.get("position")
    if position is not None and not (isinstance(position, dict) and "batch" in position
                                     and "batches" in position):
        raise UsageError(f"--resume {run_dir}: {CHECKPOINT} holds an invalid position "
                         f"({str(position)[:60]})")
    return model, extra


# --------------------------------------------------------------------------- run

def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    try:
        return _run(args, t_start)
    except UsageError as exc:
        print(f"convblocks train: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # stdout's reader went away: main() ends quietly
    except (OSError, ValueError) as exc:  # data not found, corrupt files, a full disk
        print(f"convblocks train: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # e.g. a huge --width: a message, not a traceback
        print(f"convblocks train: error: out of memory ({exc or 'MemoryError'}); a smaller "
              f"--width or --batch-size needs less", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, t_start: float) -> int:
    opts = _options(args)
    if args.resume is not None:
        out = Path(args.resume)
        if (out / "metrics.json").is_file():  # finished: its model and metrics stay as they are
            return _finish_figures(args, out, t_start)
        model, extra = _load_checkpoint(out)
        opts = {**DEFAULTS, **extra["options"]}
        if args.data_dir is not None:
            opts["data_dir"] = args.data_dir
        initial_epoch, history = int(extra["epoch"]), extra.get("history", {})
        position = extra.get("position")
        opts["_fingerprint"] = extra.get("data")  # None for checkpoints from before it
    else:
        out = Path(args.out) if args.out else _default_out()
        _check_out(out)
        model, initial_epoch, history, position = None, 0, {}, None
    # With stderr closed (2>&-) there is nowhere to draw the bar: train without it.
    progress = not args.quiet and stderr_usable()
    _check_dependencies(opts, plots=not args.no_plots, progress=progress)
    limit = _thread_limit(opts["threads"])
    try:
        return _train(args, opts, out, model, initial_epoch, history, t_start, progress,
                      position)
    finally:
        if limit is not None:
            limit.restore_original_limits()


def _train(args: argparse.Namespace, opts: dict, out: Path, model, initial_epoch: int,
           history: dict, t_start: float, show_progress: bool,
           position: dict | None = None) -> int:
    """Load the data, fit (from ``initial_epoch``, and ``position`` in it), test, save,
    plot; the exit status."""
    expected = opts.pop("_fingerprint", None)
    data = load_data(opts)
    if expected is not None and expected != data["fingerprint"]:
        raise UsageError(f"--resume {out}: the data set found{' in --data-dir' if args.data_dir else ''} "
                         f"is not the one this run was trained on (its images or labels "
                         f"differ); --data-dir may only point at the same files elsewhere")
    n_train, classes = len(data["x_train"]), data["classes"]
    steps = -(-n_train // opts["batch_size"])
    if model is None:
        model = build_model(data["x_train"].shape[1:], len(classes), width=opts["width"],
                            data_format=opts["data_format"], seed=opts["seed"])
        compile_model(model, lr=opts["lr"], total_steps=opts["epochs"] * steps)
    # Created only now, once every option and the data have been checked.
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror}); expected "
                         f"a new or empty folder") from None
    print(f"{opts['dataset']}: {n_train} training, "
          f"{0 if data['x_val'] is None else len(data['x_val'])} validation, "
          f"{len(data['x_test'])} test images; {opts['threads']} BLAS "
          f"thread{'s' if opts['threads'] > 1 else ''}; writing to {out}")
    if position is not None:
        print(f"resuming after batch {position['batch']} of {position['batches']} in epoch "
              f"{initial_epoch + 1} of {opts['epochs']}")
    elif initial_epoch:
        print(f"resuming after epoch {initial_epoch} of {opts['epochs']}")
    else:
        print(model.summary())

    progress = ProgressBar(n_train, opts["epochs"], enabled=show_progress)
    checkpoint = Checkpoint(model, out / CHECKPOINT, opts, history, position,
                            data["fingerprint"])
    val = None if data["x_val"] is None else (data["x_val"], data["y_val"])
    t_fit = time.perf_counter()
    try:
        with CtrlC() as ctrl_c:
            if initial_epoch < opts["epochs"]:
                with quiet_float_errors():
                    model.fit(data["x_train"], data["y_train"], epochs=opts["epochs"],
                              batch_size=opts["batch_size"], validation_data=val,
                              shuffle=True, seed=opts["seed"], initial_epoch=initial_epoch,
                              initial_batch=0 if position is None else position["batch"],
                              epoch_state=position,
                              callbacks=(DivergenceGuard(), progress, checkpoint, ctrl_c))
            if ctrl_c.requested:
                # Stopped after a step (or between epochs): save the exact position. A
                # second Ctrl-C raises KeyboardInterrupt here; the old file survives.
                if progress.bar is not None:
                    progress.bar.close()
                    progress.bar = None
                state = model.epoch_state
                if state is not None:
                    checkpoint.save(state["epoch"], state)
                kept = checkpoint.describe()
                if kept is None:
                    print("\ninterrupted before the first batch completed: nothing to resume",
                          file=sys.stderr)
                else:
                    print(f"\ninterrupted: {out / CHECKPOINT} holds {kept}.\nresume with: "
                          f"convblocks train --resume {shlex.quote(str(out))}", file=sys.stderr)
                return 130
    except Diverged as exc:
        if progress.bar is not None:
            progress.bar.close()
        kept = checkpoint.describe()
        kept = f"{out / CHECKPOINT} keeps {kept}" if kept else "nothing was saved"
        print(f"convblocks train: error: training diverged: {exc} (--lr {opts['lr']} is "
              f"too high? try a lower one); no model.npz or metrics.json written, {kept}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A second Ctrl-C (or one where the handler could not be installed): stopped
        # at once, possibly mid-step or mid-save; the file keeps the last saved state.
        if progress.bar is not None:
            progress.bar.close()
        kept = checkpoint.describe()
        if kept:
            print(f"\ninterrupted: {out / CHECKPOINT} holds {kept}.\nresume with: "
                  f"convblocks train --resume {shlex.quote(str(out))}", file=sys.stderr)
        else:
            print("\ninterrupted before anything was saved: nothing to resume",
                  file=sys.stderr)
        return 130
    fit_time = time.perf_counter() - t_fit
    history = checkpoint.history

    saved = False  # model.npz and metrics.json written
    try:
        # Test set: one prediction pass gives accuracy, loss, confusion matrix and table.
        from .evaluate import evaluate_model
        test = evaluate_model(model, data["x_test"], data["y_test"], classes)
        probs, cm, table_rows = test["probs"], test["cm"], test["per_class"]
        print(f"\ntest accuracy {test['accuracy']:.2%} (loss {test['loss']:.4f}) on "
              f"{len(probs)} images\n{test['table']}")

        model.save(out / "model.npz", include_optimizer=True,
                   extra={"dataset": opts["dataset"], "classes": classes,
                          "data_format": opts["data_format"], "epoch": opts["epochs"],
                          "test_accuracy": float(test["accuracy"])})
        rates = [r for r in history.get("images_per_s", []) if r]
        metrics = {
            "test_accuracy": float(test["accuracy"]), "test_loss": float(test["loss"]),
            "per_class": table_rows, "confusion_matrix": cm.tolist(), "history": history,
            "wall_time_s": time.perf_counter() - t_start, "fit_time_s": fit_time,
            "images_per_s": float(np.mean(rates)) if rates else None,
            "n_train": n_train, "n_val": 0 if val is None else len(val[0]),
            "n_test": len(probs), "seed": opts["seed"], "options": opts,
            "resumed_from_epoch": initial_epoch if args.resume is not None else None,
            "resumed_from_batch": None if position is None else position["batch"], "figures": {},
            "command": "convblocks " + " ".join(sys.argv[1:]),
        }
        # The model and the metrics are saved before drawing: a failing figure loses neither.
        write_json(out / "metrics.json", metrics)
        saved = True
        if not args.no_plots:
            try:
                metrics["figures"] = _plots(model, data, history, probs, cm, out, opts)
            except Exception as exc:  # noqa: BLE001 - reported; model and metrics are saved
                print(f"convblocks train: error: drawing the figures failed ({type(exc).__name__}: "
                      f"{exc}); {out / 'model.npz'} and metrics.json are saved (`convblocks "
                      f"train --resume {shlex.quote(str(out))}` draws the figures again)",
                      file=sys.stderr)
                return 1
            metrics["wall_time_s"] = time.perf_counter() - t_start
            write_json(out / "metrics.json", metrics)
        figures = metrics["figures"]
        print(f"wrote {out / 'model.npz'}, metrics.json"
              + (", " + ", ".join(figures.values()) if figures else "")
              + f" ({metrics['wall_time_s']:.0f} s)")
    except KeyboardInterrupt:
        # Training is complete (the checkpoint holds it); only the report was cut short.
        done = (f"{out / 'model.npz'} and metrics.json are saved; the figures are incomplete "
                f"(`convblocks train --resume {shlex.quote(str(out))}` draws them)"
                if saved else f"{out / CHECKPOINT} holds the finished training; "
                f"`convblocks train --resume {shlex.quote(str(out))}` runs the test pass and "
                f"writes the outputs")
        print(f"\ninterrupted after training: {done}", file=sys.stderr)
        return 130
    return 0


FIGURES = ("curves", "filters", "confusion", "predictions")


def _finish_figures(args: argparse.Namespace, out: Path, t_start: float) -> int:
    """``--resume`` of a finished run: draw the figures it lacks (a run stopped, or
    failing, while drawing), from its model.npz and metrics.json; change nothing else.

    A run with every figure (or ``--no-plots``) is refused: nothing is left to do, and
    training again would replace its results.
    """
    from convblocks.nn import load_model

    try:
        metrics = json.loads((out / "metrics.json").read_text())
        figures = metrics["figures"]
        opts = {**DEFAULTS, **metrics["options"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {out}: its metrics.json is not a finished run's "
                         f"({type(exc).__name__}: {exc})") from None
    missing = [k for k in FIGURES if not (k in figures and (out / f"{k}.png").is_file())]
    if not missing or args.no_plots:
        raise UsageError(f"--resume {out}: that run is finished (its metrics.json is written"
                         f"{' and every figure drawn' if not missing else ''}); expected an "
                         f"interrupted run. Nothing in it is overwritten: test it with "
                         f"`convblocks evaluate {out / 'model.npz'}` or start a new run with "
                         f"another --out")
    _check_dependencies(opts, plots=True, progress=False)
    try:
        model = load_model(out / "model.npz")
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {out}: cannot read its model.npz ({exc})") from None
    if args.data_dir is not None:
        opts["data_dir"] = args.data_dir
    data = load_data(opts)
    expected = (_load_checkpoint(out)[1].get("data") if (out / CHECKPOINT).is_file()
                else None)
    if expected is not None and expected != data["fingerprint"]:
        raise UsageError(f"--resume {out}: the data set found is not the one this run was "
                         f"trained on (its images or labels differ)")
    probs = model.predict(data["x_test"])
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    print(f"{out}: finished run; drawing its missing figures ({', '.join(missing)})")
    drawn = _plots(model, data, metrics["history"], probs, cm, out, opts)
    metrics["figures"] = drawn
    write_json(out / "metrics.json", metrics)
    print(f"wrote {', '.join(drawn.values())} ({time.perf_counter() - t_start:.0f} s)")
    return 0


def _plots(model, data, history, probs, cm, out: Path, opts: dict) -> dict:
    from convblocks import plots

    first_conv = next(layer for layer in model.layers if "kernel" in layer.params)
    n = 24
    rng = np.random.default_rng(opts["seed"])
    pick = np.sort(rng.choice(len(data["y_test"]), size=min(n, len(data["y_test"])),
                              replace=False))
    paths = {
        "curves": plots.plot_history(history, out / "curves.png"),
        "filters": plots.plot_filters(first_conv.params["kernel"], out / "filters.png",
                                      data_format=opts["data_format"]),
        "confusion": plots.plot_confusion(cm, data["classes"], out / "confusion.png"),
        "predictions": plots.plot_predictions(data["x_test_nhwc"][pick], data["y_test"][pick],
                                              probs[pick], data["classes"],
                                              out / "predictions.png"),
    }
    return {k: p.name for k, p in paths.items()}
