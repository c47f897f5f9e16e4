"""Run a submission in its own process, with a time limit per call and a memory cap.

:class:`Sandbox` owns one child (:mod:`convblocks.grade.worker`) per submission file. It
starts it in a fresh temporary working directory with stdin closed, its output
captured and cut, ``RLIMIT_AS`` set, and one BLAS thread. Each statement of the code
while loading, and each call of a learner's function, must answer within the time
limit; otherwise the child's process group is killed. A child that dies (``os._exit``,
a segfault, the kernel's OOM killer) or hangs while loading is restarted with the
offending statement skipped; one that dies or hangs in a call is restarted for the next
call. What it protects: the grader and the other submissions, from learner code that
loops, crashes, exits, floods output or eats memory. It is NOT a security sandbox: the
code runs with your user's rights and can read, write and delete your files.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .load import Submission

__all__ = ["Outcome", "Sandbox"]

_CAPTURE_LIMIT = 8000
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The grader's jobs run sandboxes on threads; CPython 3.11's ast.parse is not safe in
# two threads at once ("AST constructor recursion depth mismatch"), so it takes turns.
_AST_LOCK = threading.Lock()
_MAX_RESTARTS_WHILE_LOADING = 8


@dataclass
class Outcome:
    """What one call of a learner's function did.

    ``status``: ``"ok"`` (returned ``value``), ``"raised"`` (``error`` has type, message,
    where), ``"timeout"`` or ``"crashed"`` (``error["message"]`` says how).
    """

    status: str
    value: Any = None
    error: dict[str, Any] | None = None
    modified: list[str] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    called: list[str] = field(default_factory=list)  # substituted helpers that ran


class _Died(Exception):
    def __init__(self, how: str, timed_out: bool) -> None:
        super().__init__(how)
        self.how, self.timed_out = how, timed_out


class Sandbox:
    """One submission's child process; see the module docstring.

    Parameters
    ----------
    submission : Submission
    timeout : float
        Seconds allowed per statement while loading and per call.
    memory : int
        Address-space limit of the child in bytes (0: none).
    layout : str
        The learner's activation layout, for the reference helpers it may be given.
    """

    def __init__(self, submission: Submission, *, timeout: float, memory: int,
                 layout: str = "NHWC") -> None:
        self.submission = submission
        self.timeout = float(timeout)
        self.memory = int(memory)
        self.layout = layout
        self.skip: list[list[int]] = []
        self.notes: list[dict[str, Any]] = []      # load problems, first load only
        self.callables: list[str] = []
        self.load_output = ""
        self.loaded = False
        self._proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._captured: list[bytes] = []
        self._captured_size = 0

    # -- process -----------------------------------------------------------------------
    def _spawn(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="convblocks-grade-")
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        env = dict(os.environ)
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   MPLBACKEND="Agg", HOME=self._tmp.name, PYTHONDONTWRITEBYTECODE="1")
        # The child imports the same convblocks as this process, wherever it lives.
        env["PYTHONPATH"] = _PACKAGE_ROOT
        self._proc = subprocess.Popen(
            [sys.executable, "-s", "-m", "convblocks.grade.worker", str(req_r), str(rep_w)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self._tmp.name, env=env, pass_fds=(req_r, rep_w), start_new_session=True)
        os.close(req_r)
        os.close(rep_w)
        self._requests = os.fdopen(req_w, "wb", buffering=0)
        self._replies = rep_r
        self._buffer = b""
        self._captured, self._captured_size = [], 0
        threading.Thread(target=self._drain, args=(self._proc.stdout,), daemon=True).start()

    def _drain(self, stream) -> None:
        """Keep the first bytes the child writes to its stdout/stderr; discard the rest."""
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            if self._captured_size < _CAPTURE_LIMIT:
                self._captured.append(chunk[:_CAPTURE_LIMIT - self._captured_size])
            self._captured_size += len(chunk)

    def captured(self) -> str:
        text = b"".join(self._captured).decode(errors="replace")
        if self._captured_size > _CAPTURE_LIMIT:
            text += f"\n... [{self._captured_size - _CAPTURE_LIMIT} more bytes cut]"
        return text

    def _kill(self) -> str:
        """Kill the child's process group; return how it ended."""
        proc, self._proc = self._proc, None
        if proc is None:
            return "not running"
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = proc.wait()
        try:
            self._requests.close()
        except OSError:
            pass
        os.close(self._replies)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return _describe_exit(code)

    def close(self) -> None:
        if self._proc is not None:
            self._kill()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- frames with a deadline ------------------------------------------------------
    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            left = deadline - time.monotonic()
            ready = select.select([self._replies], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise _Died("timed out", True)
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                assert self._proc is not None
                try:
                    code = self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                raise _Died(_describe_exit(code), False)
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_frame(self, deadline: float) -> dict:
        n_text, n_blob = wire.HEADER.unpack(self._read_exact(wire.HEADER.size, deadline))
        text = self._read_exact(n_text, deadline)
        return wire.unpack(text, self._read_exact(n_blob, deadline))

    def _send(self, message: dict, payload: Any = None) -> None:
        try:
            self._requests.write(wire.pack(message, payload))
        except BrokenPipeError as exc:
            raise _Died("the process had already exited", False) from exc

    # -- loading -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child and run the submission's code (restarting past fatal statements)."""
        units = [{"label": u.label, "source": u.source} for u in self.submission.units]
        for _ in range(_MAX_RESTARTS_WHILE_LOADING + 1):
            self._spawn()
            at: list[int] | None = None
            try:
                self._send({"op": "init", "units": units, "skip": self.skip,
                            "memory": self.memory, "layout": self.layout})
                startup = time.monotonic() + max(self.timeout, 30.0)  # imports NumPy first
                deadline = startup
                while True:
                    frame = self._read_frame(deadline)
                    if frame["op"] == "progress":
                        at = frame["at"]
                        deadline = time.monotonic() + self.timeout
                        continue
                    break
            except _Died as died:
                ended = self._kill()
                how = ended if died.timed_out else died.how
                if at is None:
                    raise RuntimeError(f"the grading process failed to start ({how}): "
                                       f"{self.captured()[-2000:]}") from None
                unit = self.submission.units[at[0]]
                self.skip.append(at)
                what = (f"did not finish within {self.timeout:g} s" if died.timed_out
                        else f"ended the process ({how})")
                if not self.loaded:
                    self.notes.append({"unit": unit.label, "statement": at[1], "line": None,
                                       "code": "", "fatal": True,
                                       "error": {"type": "Timeout" if died.timed_out else "Exit",
                                                 "message": f"this statement {what}; skipped",
                                                 "where": []}})
                continue
            if not self.loaded:
                self.notes.extend(frame["notes"])
                self.callables = frame["callables"]
                self.load_output = frame["output"]
                self._fill_fatal_lines()
            self.loaded = True
            return
        raise RuntimeError("the code kept ending the process while loading; gave up after "
                           f"{_MAX_RESTARTS_WHILE_LOADING} restarts")

    def _fill_fatal_lines(self) -> None:
        """Give skipped statements their line and text (known only after a clean load)."""
        import ast
        for note in self.notes:
            if note.get("fatal") and note.get("line") is None:
                unit = next(u for u in self.submission.units if u.label == note["unit"])
                try:
                    with _AST_LOCK:  # CPython 3.11 builds ASTs unsafely in parallel threads
                        statement = ast.parse(unit.source).body[note["statement"]]
                except (SyntaxError, IndexError):
                    continue
                note["line"] = statement.lineno
                note["code"] = unit.source.split("\n")[statement.lineno - 1].strip()[:120]

    # -- calls -------------------------------------------------------------------------
    def call(self, name: str, args: list[Any], *, substitute: dict[str, str] | None = None
             ) -> Outcome:
        """Call the learner's ``name(*args)`` in the child; never raises for its faults.

        ``substitute`` maps names in the learner's module to reference helpers
        (``{"zero_pad": "zero_pad"}``) for the duration of this call.
        """
        if self._proc is None:  # the last call killed it: a fresh process, the code run again
            try:
                self.start()
            except RuntimeError as exc:  # e.g. a loaded machine: this call's fault, not the grader's
                return Outcome("crashed", output=self.captured()[-1500:], error={
                    "type": "Crash", "where": [],
                    "message": f"the grading process could not be restarted: {exc}"})
        try:
            self._send({"op": "call", "name": name, "substitute": substitute or {}}, args)
            frame = self._read_frame(time.monotonic() + self.timeout)
        except _Died as died:
            how = self._kill()
            if died.timed_out:
                return Outcome("timeout", error={
                    "type": "Timeout", "where": [],
                    "message": f"did not return within {self.timeout:g} s"})
            # What the process printed last: faulthandler's stack for a segfault.
            return Outcome("crashed", output=self.captured()[-1500:], error={
                "type": "Crash", "where": [], "message": f"the process died: {how}"})
        called = frame.get("called", [])
        if frame["ok"]:
            return Outcome("ok", value=frame.get("data"), modified=frame["modified"],
                           output=frame["output"], seconds=frame["seconds"], called=called)
        return Outcome("raised", error=frame["error"], modified=frame["modified"],
                       output=frame["output"], seconds=frame["seconds"], called=called)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = {"SIGSEGV": " (a crash in native code, e.g. ctypes or a NumPy misuse)",
                "SIGKILL": " (killed, e.g. out of memory)"}.get(name, "")
        return f"killed by {name}{what}"
    return f"exited with status {code} (os._exit() or a fatal error)"
