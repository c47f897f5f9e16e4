"""The child process that runs one submission's code (``python -I -m convblocks.grade.worker``).

It talks to the grader over two pipes given as file descriptors (requests in, replies
out); its stdin is /dev/null and its own stdout/stderr are captured by the parent. It

1. imports NumPy (the reference helpers only if asked for), then caps its address space
   (``resource.RLIMIT_AS``) so a memory bomb raises ``MemoryError`` here;
2. runs the submission one top-level statement at a time, announcing each before it
   runs, so the parent can skip one that hangs or kills the process and start again;
3. answers ``call`` requests: decode the arguments, call the learner's function (with
   reference helpers substituted into its globals when asked), report the result,
   the exception, the printed output and which arguments it modified in place.

The learner's code runs here with the user's rights: this is a fault boundary, not a
security sandbox.
"""

from __future__ import annotations

import ast
import builtins
import io
import linecache
import os
import sys
import time
import traceback
from typing import Any

_OUTPUT_LIMIT = 4000


class BoundedWriter(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int = _OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n... [{self.dropped} more characters cut]"
        self.parts, self.kept, self.dropped = [], 0, 0
        return text


def _error(exc: BaseException, filenames: set[str]) -> dict[str, Any]:
    """Type, message and the learner's own frames of an exception."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in filenames]
    lines = [f'  {f.filename}, line {f.lineno}, in {f.name}: {(f.line or "").strip()}'
             for f in frames[-4:]]
    try:
        message = str(exc)
    except Exception:
        message = "<str() of the exception failed>"
    return {"type": type(exc).__name__, "message": message[:600], "where": lines}


def _snapshot(value: Any, path: str, out: list) -> None:
    import numpy as np
    if isinstance(value, np.ndarray):
        out.append((path, value, value.copy()))
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            _snapshot(v, f"{path}[{i}]", out)
    elif isinstance(value, dict):
        out.append((path, value, dict(value)))


def _modified(snapshots: list) -> list[str]:
    import numpy as np
    changed = []
    for path, live, saved in snapshots:
        if isinstance(saved, dict):
            if live != saved:
                changed.append(path)
        elif live.shape != saved.shape or not np.array_equal(live, saved, equal_nan=True):
            changed.append(path)
    return changed


def _counted(helper: Any, name: str, called: set[str]) -> Any:
    """``helper``, recording in ``called`` that it ran."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        called.add(name)
        return helper(*args, **kwargs)
    return wrapper


def _reference_helpers(layout: str) -> dict[str, Any]:
    """The reference helpers, adapted to the learner's activation layout.

    Imported on first use (most submissions never need them), under the memory cap.
    """
    from convblocks.grade.truth import reference as ref

    def zero_pad(X, pad):
        if layout == "NCHW":
            return ref.zero_pad(X.transpose(0, 2, 3, 1), pad).transpose(0, 3, 1, 2)
        return ref.zero_pad(X, pad)

    return {"zero_pad": zero_pad, "conv_single_step": ref.conv_single_step,
            "create_mask_from_window": ref.create_mask_from_window,
            "distribute_value": ref.distribute_value}


def main(argv: list[str]) -> int:
    from convblocks.grade import wire
    import numpy as np  # noqa: F401  (imported before the memory cap)

    requests = os.fdopen(int(argv[1]), "rb", buffering=0)
    replies = os.fdopen(int(argv[2]), "wb", buffering=0)
    init = wire.read_frame(requests)
    helpers: dict[str, Any] = {}

    import faulthandler
    import resource
    faulthandler.enable()  # a segfault prints the Python stack to the captured stderr
    limit = int(init["memory"])
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.stdin = io.StringIO("")
    writer = BoundedWriter()
    real_stdout, real_stderr = sys.stdout, sys.stderr
    namespace: dict[str, Any] = {"__name__": "__submission__", "__builtins__": builtins}
    filenames = {u["label"] for u in init["units"]}
    for unit in init["units"]:  # so tracebacks can quote the learner's lines
        lines = unit["source"].splitlines(keepends=True)
        linecache.cache[unit["label"]] = (len(unit["source"]), None, lines, unit["label"])
    skip = {tuple(s) for s in init["skip"]}
    notes: list[dict[str, Any]] = []

    sys.stdout = sys.stderr = writer
    try:
        for u, unit in enumerate(init["units"]):
            try:
                tree = ast.parse(unit["source"], filename=unit["label"])
            except (SyntaxError, ValueError) as exc:
                notes.append({"unit": unit["label"], "line": getattr(exc, "lineno", None),
                              "code": (getattr(exc, "text", "") or "").strip()[:120],
                              "error": {"type": type(exc).__name__, "message": str(exc)[:300],
                                        "where": []}})
                continue
            lines = unit["source"].split("\n")
            for s, statement in enumerate(tree.body):
                code_line = lines[statement.lineno - 1].strip()[:120]
                if (u, s) in skip:
                    continue
                wire.write_frame(replies, {"op": "progress", "at": [u, s]})
                try:
                    code = compile(ast.Module([statement], type_ignores=[]), unit["label"], "exec")
                    exec(code, namespace)
                except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                    notes.append({"unit": unit["label"], "line": statement.lineno,
                                  "code": code_line, "error": _error(exc, filenames)})
    finally:
        sys.stdout, sys.stderr = real_stdout, real_stderr
    callables = sorted(k for k, v in namespace.items()
                       if callable(v) and not k.startswith("__") and not isinstance(v, type))
    wire.write_frame(replies, {"op": "loaded", "notes": notes, "callables": callables,
                               "output": writer.take()})

    while True:
        try:
            request = wire.read_frame(requests)
        except EOFError:
            return 0
        if request.get("op") != "call":
            return 0
        args = request["data"]
        function = namespace.get(request["name"])
        snapshots: list = []
        _snapshot(args, "args", snapshots)
        saved = {}
        if request.get("substitute") and not helpers:
            helpers.update(_reference_helpers(init["layout"]))
        called: set[str] = set()  # which substituted helpers the function called
        for learner_name, canonical in request.get("substitute", {}).items():
            saved[learner_name] = namespace.get(learner_name, _MISSING)
            namespace[learner_name] = _counted(helpers[canonical], canonical, called)
        sys.stdout = sys.stderr = writer
        start = time.perf_counter()
        try:
            if not callable(function):
                raise NameError(f"name {request['name']!r} is not defined")
            result = function(*args)
            reply, payload = {"op": "result", "ok": True}, result
        except BaseException as exc:
            reply, payload = {"op": "result", "ok": False, "error": _error(exc, filenames)}, None
        finally:
            seconds = time.perf_counter() - start
            sys.stdout, sys.stderr = real_stdout, real_stderr
            for learner_name, value in saved.items():
                if value is _MISSING:
                    namespace.pop(learner_name, None)
                else:
                    namespace[learner_name] = value
        reply.update(seconds=seconds, output=writer.take(), modified=_modified(snapshots),
                     called=sorted(called))
        try:
            wire.write_frame(replies, reply, payload)
        except MemoryError:
            wire.write_frame(replies, {"op": "result", "ok": False, "seconds": seconds,
                                       "output": "", "modified": [],
                                       "error": {"type": "MemoryError", "where": [],
                                                 "message": "the result is too large to send back"}})


_MISSING = object()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
