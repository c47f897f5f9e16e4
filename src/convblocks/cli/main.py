"""``convblocks`` entry point: finds each command in ``convblocks.cli.<name>``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status). Modules are imported only when their command
runs, so a missing optional dependency of one command never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: OpenBLAS's idle worker threads spin for 2**28 cycles (about 0.1 s) after every BLAS
#: call, taking a core from the engine's own threads and from the NumPy work that runs
#: between BLAS calls: in training that is most of the time. Measured on the 2-core
#: machine, one epoch of ``convblocks bench --train --threads 2`` (50 batches): 1.51-1.60 s
#: with the default, 1.08-1.45 s with 2**4 cycles. But a sleeping thread must be woken
#: for every BLAS call, which costs more than it saves on the kernel benchmarks' small
#: GEMMs (shape (c): 8x slower), so only the training commands set it. OpenBLAS reads
#: the variable once, when NumPy loads it: it is set before any command imports NumPy,
#: unless the user has set it. See docs/engine.md ("Threads").
BLAS_THREAD_TIMEOUT = "4"


def wants_quiet_blas(argv: list[str]) -> bool:
    """Whether ``argv`` runs training: ``train``, or ``bench --train`` without kernel cases."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "train":
        return True
    return (command == "bench" and "--train" in argv
            and not any(a == "--cases" or a.startswith("--cases=") for a in argv))


def quiet_blas_threads(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` (unless set) while NumPy is not yet loaded.

    Returns True when the setting applies to this process (NumPy not loaded yet).
    """
    if "numpy" in sys.modules:
        return False
    environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)
    return True


# name -> one-line help, shown by `convblocks --help` without importing the module.
COMMANDS: dict[str, str] = {
    "steps": "walk through the exercise's eight functions on its own inputs",
    "grade": "grade learners' own eight functions (.py, .ipynb or a directory of them)",
    "bench": "time convolution and pooling (and optionally training) against PyTorch",
    "train": "train a small CNN on Fashion-MNIST (or MNIST, SIGNS) and report test accuracy",
    "evaluate": "test a saved model: accuracy and a per-class table",
    "predict": "classify PNG or .npy images with a saved model",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    from convblocks import __version__

    parser = argparse.ArgumentParser(
        prog="convblocks",
        description="Convolutional-network building blocks in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"convblocks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        # No abbreviated options: wants_quiet_blas() reads the raw argv (--ca is not --cases)
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        if name == command:
            module = importlib.import_module(f"convblocks.cli.{name}")
            module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status.

    A reader that goes away (``convblocks predict ... | head -1``) ends the command
    quietly with status 1, as the Python docs' "Note on SIGPIPE" recommends: stdout is
    pointed at devnull so that the interpreter's final flush cannot fail again.
    """
    try:
        status = _main(argv)
        if sys.stdout is not None:  # None when started with stdout closed (>&-)
            sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # no real stdout file descriptor
            pass
        return 1
    return status


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_quiet_blas(argv):
        quiet_blas_threads()
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"convblocks.cli.{args.command}")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
