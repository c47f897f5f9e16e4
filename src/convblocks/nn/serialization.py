"""Save and load whole models: one ``.npz`` file, written atomically.

The file holds NumPy arrays only (loaded with ``allow_pickle=False``):

=============================  ====================================================
``convblocks_format``          the string ``"convblocks.nn.Sequential"`` (marks our files)
``format_version``             int; files newer than ``FORMAT_VERSION`` are refused
``architecture``               JSON: ``Sequential.get_config()``
``training``                   JSON: loss, optimizer, schedule configs and ``clip_norm``
                               (``null`` entries when not compiled / not included; the
                               loss is stored whenever the model has one, see below)
``extra``                      JSON: the caller's ``extra`` dict (epoch, history, ...)
``param/<i>.<name>``           every trainable array
``buffer/<i>.<name>``          every buffer (BatchNorm running statistics)
``optim/<key>``                optimizer state (``iterations``, ``exp_avg/<i>.<name>``, ...)
=============================  ====================================================

Versions: 1 stored the loss only with the optimizer, so a model saved with
``include_optimizer=False`` lost its loss and ``predict`` fell back to softmax (wrong for
MSE). 2 stores the loss whenever the model has one (``include_optimizer=False``
leaves out the optimizer, its state, the schedule and ``clip_norm`` only), and
``load_model`` sets ``model.loss`` from it without compiling. Version-1 files still load
as before.

Atomic: the archive goes to a temporary file in the destination's directory, is
flushed and fsynced, then ``os.replace``-d over the destination; on any failure the
temporary file is removed and a previous file at ``path`` is untouched. An existing
file keeps its permission bits, and a symbolic link at ``path`` is written through
(its target is replaced; the link stays).
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from typing import Any

import numpy as np

from .._atomic import atomic_write
from .base import as_bool
from .losses import loss_from_config
from .model import Sequential
from .optim import optimizer_from_config
from .schedules import schedule_from_config

__all__ = ["FORMAT_VERSION", "save_model", "load_model"]

FORMAT_VERSION = 2
_MAGIC = "convblocks.nn.Sequential"


def _path(path: Any) -> str:
    """``path`` as a str (``os.fspath``), or a ``TypeError`` that names the argument."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike; got {path!r} "
                        f"({type(path).__name__})") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError("path must not be empty")
    return path


def _json_array(value: Any, what: str) -> np.ndarray:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None
    return np.array(text)


def save_model(model: Sequential, path: Any, *, include_optimizer: bool = True,
               extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` (architecture, weights, optionally optimizer state and ``extra``).

    Parameters
    ----------
    model : Sequential
        A built model.
    path : str or os.PathLike
        Destination file, written as given (no suffix is added). A symbolic link is
        written through: its target is replaced and the link stays. An existing
        file keeps its permission bits. A directory raises ``IsADirectoryError``.
    include_optimizer : bool
        Also store the optimizer (with its state), schedule and ``clip_norm`` so that
        ``load_model`` returns a compiled model that resumes training exactly. The loss
        is stored either way (``predict`` needs its output transform).
    extra : dict, optional
        JSON-able data kept with the model (``load_model(...).extra``).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential; got {type(model).__name__}")
    if not model.built:
        raise ValueError("cannot save an unbuilt model: pass input_shape= or run it once")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None; got {type(extra).__name__}")
    include_optimizer = as_bool(include_optimizer, "include_optimizer")
    path = _path(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot save the model to {path!r}: it is a "
                                f"directory (give a file name, e.g. 'model.npz')")
    arrays: dict[str, np.ndarray] = {
        "convblocks_format": np.array(_MAGIC),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "architecture": _json_array(model.get_config(), "architecture"),
        "extra": _json_array(extra, "extra"),
    }
    training: dict[str, Any] = {
        "loss": None if model.loss is None else model.loss.get_config(),
        "optimizer": None, "schedule": None, "clip_norm": None}
    if include_optimizer and model.optimizer is not None:
        training.update(optimizer=model.optimizer.get_config(),
                        schedule=None if model.schedule is None else model.schedule.get_config(),
                        clip_norm=model.clip_norm)
        for key, value in model.optimizer.state_dict().items():
            arrays[f"optim/{key}"] = value
    arrays["training"] = _json_array(training, "training")
    for key, value in model.params().items():
        arrays[f"param/{key}"] = value
    for key, value in model.buffers().items():
        arrays[f"buffer/{key}"] = value

    _atomic_write(path, arrays)


def _atomic_write(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the archive atomically (:func:`convblocks._atomic.atomic_write`: a temporary
    sibling, fsync, rename; through a symlink the target is replaced, its mode is kept)."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _read(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive, or a ValueError that says what is wrong."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise ValueError(f"{path!r} is not a convblocks model file (not an .npz archive; "
                         f"it starts with {head!r})")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as exc:  # e.g. a member that would need pickle
        raise ValueError(f"{path!r} is not a convblocks model file or is corrupted "
                         f"({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ValueError(f"{path!r} is truncated or corrupted ({type(exc).__name__}: "
                         f"{exc})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # NumPy hands back a non-.npy member as bytes
            raise ValueError(f"{path!r} is corrupted: entry {key!r} is not a NumPy array "
                             f"(its member starts with {bytes(value[:8])!r})")
    return arrays


def _json(data: dict[str, np.ndarray], key: str, path: str, kind: type | None = None) -> Any:
    """Entry ``key``: a 0-d string array holding JSON (of type ``kind`` when given)."""
    arr = data[key]
    if arr.shape != () or arr.dtype.kind != "U":
        raise ValueError(f"{path!r} is corrupted: entry {key!r} must be a JSON string; got "
                         f"an array of dtype {arr.dtype} and shape {arr.shape}")
    try:
        value = json.loads(str(arr[()]))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path!r} is corrupted: entry {key!r} is not valid JSON ({exc})") from None
    if kind is not None and not isinstance(value, kind):
        raise ValueError(f"{path!r} is corrupted: entry {key!r} must hold a JSON object; got "
                         f"{type(value).__name__} {str(value)[:60]}")
    return value


def _version(data: dict[str, np.ndarray], path: str) -> int:
    """Entry ``format_version``: a 0-d integer in ``[1, FORMAT_VERSION]``."""
    arr = data["format_version"]
    if arr.shape != () or arr.dtype.kind not in "iu":
        raise ValueError(f"{path!r} is corrupted: entry 'format_version' must be an integer; "
                         f"got {arr.tolist()!r} (dtype {arr.dtype}, shape {arr.shape})")
    version = int(arr)
    if version > FORMAT_VERSION:
        raise ValueError(f"{path!r} has format version {version}, newer than this convblocks "
                         f"reads ({FORMAT_VERSION}); upgrade convblocks")
    if version < 1:
        raise ValueError(f"{path!r} has an invalid format version {version} (entry "
                         f"'format_version' must be 1 to {FORMAT_VERSION})")
    return version


def load_model(path: Any) -> Sequential:
    """Read a model written by :func:`save_model` / ``Sequential.save``.

    Returns a built ``Sequential`` with the saved weights and buffers; compiled again
    (with the optimizer's state) when the optimizer was saved, else with only
    ``model.loss`` set when the loss was (format 2), so that ``predict`` returns what
    the saved model's did. ``model.extra`` holds the saved ``extra`` (or None).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file and the entry: the file is truncated or corrupted, is not a
        convblocks model file, lacks entries, holds ``param/``/``buffer/`` entries
        its architecture has no place for, holds an entry of the wrong kind (a
        ``format_version`` that is not an integer, ``training`` that is not a JSON
        object, optimizer slots missing or unlike their parameters, a negative
        ``optim/iterations``, ...), or was written by a newer format version.
    """
    path = _path(path)
    data = _read(path)
    marker = data.get("convblocks_format")
    if (marker is None or marker.shape != () or marker.dtype.kind != "U"
            or str(marker[()]) != _MAGIC):
        raise ValueError(f"{path!r} is not a convblocks model file (no "
                         f"'convblocks_format' marker; it holds {sorted(data)[:5]})")
    missing = [k for k in ("format_version", "architecture", "training", "extra") if k not in data]
    if missing:
        raise ValueError(f"{path!r} is a damaged convblocks model file: missing {missing}")
    _version(data, path)  # 1 and 2 read alike: a version-1 file has no lone loss
    arch = _json(data, "architecture", path, dict)
    training = _json(data, "training", path, dict)
    extra = _json(data, "extra", path)
    for key in ("loss", "optimizer", "schedule"):
        if training.get(key) is not None and not isinstance(training[key], dict):
            raise ValueError(f"{path!r} is corrupted: entry 'training' holds a {key!r} that is "
                             f"not a JSON object or null: {training[key]!r}")
    try:
        model = Sequential.from_config(arch)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!r} holds an invalid architecture: {exc}") from None
    if not model.built:
        raise ValueError(f"{path!r} holds an unbuilt model (no input_shape)")
    for prefix, targets in (("param", model.params()), ("buffer", model.buffers())):
        for key, target in targets.items():
            name = f"{prefix}/{key}"
            if name not in data:
                raise ValueError(f"{path!r} is a damaged convblocks model file: missing {name!r}")
            if data[name].shape != target.shape or data[name].dtype != target.dtype:
                raise ValueError(f"{path!r} does not match its architecture: {name!r} has "
                                 f"shape {data[name].shape} {data[name].dtype}; the "
                                 f"architecture needs {target.shape} {target.dtype}")
            target[...] = data[name]
    for prefix, targets in (("param", model.params()), ("buffer", model.buffers())):
        stray = sorted(k for k in data if k.startswith(prefix + "/")
                       and k[len(prefix) + 1:] not in targets)
        if stray:  # the architecture lost a layer, or the entries are not its own
            raise ValueError(f"{path!r} does not match its architecture: it holds "
                             f"{stray[:3]}{' ...' if len(stray) > 3 else ''}, which the "
                             f"architecture has no {prefix} for (its {prefix}s: "
                             f"{sorted(targets)[:6]})")
    optim_state = {k[len("optim/"):]: v for k, v in data.items() if k.startswith("optim/")}
    if training.get("optimizer") is not None:
        try:
            optimizer = optimizer_from_config(training["optimizer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path!r} holds an invalid optimizer entry: {exc}") from None
        try:  # every slot against the parameters: a missing one would restart at zero
            optimizer.check_state(optim_state, model.params(), prefix="optim/")
        except ValueError as exc:
            raise ValueError(f"{path!r} is corrupted: {exc}") from None
        optimizer.load_state_dict(optim_state)
        try:
            model.compile(loss=loss_from_config(training["loss"]), optimizer=optimizer,
                          schedule=(None if training.get("schedule") is None
                                    else schedule_from_config(training["schedule"])),
                          clip_norm=training.get("clip_norm"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path!r} holds an invalid optimizer/loss entry: {exc}") from None
    else:
        if optim_state:
            raise ValueError(f"{path!r} is corrupted: it holds optimizer state "
                             f"({sorted('optim/' + k for k in optim_state)[:3]}) but no "
                             f"optimizer in entry 'training'")
        if training.get("loss") is not None:  # version 2: the loss without the optimizer
            try:
                model.loss = loss_from_config(training["loss"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path!r} holds an invalid loss entry: {exc}") from None
    model.extra = extra
    return model
