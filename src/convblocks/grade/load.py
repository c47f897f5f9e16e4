"""Find submissions and read their code, without running any of it.

A submission is a ``.py`` file or a ``.ipynb`` notebook. A notebook's code cells are
taken in order; IPython-only lines (``%magic``, ``!shell``) become ``pass`` so line
numbers stay right, and ``%%cell`` magics skip the whole cell. Running the code is the
worker's job (:mod:`convblocks.grade.worker`), one top-level statement at a time, so an
import that fails (``from public_tests import *``) costs one statement, not the file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Unit", "Submission", "find_submissions", "read_submission", "SUFFIXES"]

SUFFIXES = (".py", ".ipynb")
_MAGIC = re.compile(r"^(\s*)[%!]")


@dataclass(frozen=True)
class Unit:
    """One piece of source run in order: a whole .py file or one notebook code cell."""

    label: str   # "alice.py" or "alice.ipynb [cell 3]": the filename in tracebacks
    source: str


@dataclass(frozen=True)
class Submission:
    """A file to grade: its path, kind and code units (``problem`` if unreadable)."""

    path: str
    kind: str                    # "python" or "notebook"
    units: tuple[Unit, ...]
    problem: str | None = None   # why the file could not be read at all


def find_submissions(paths: list[str]) -> list[str]:
    """Expand ``paths`` (files or directories) into the submission files, sorted.

    Raises
    ------
    ValueError
        If a path does not exist or is a file that is neither .py nor .ipynb.
    """
    found: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.suffix in SUFFIXES and q.is_file()
                           and ".ipynb_checkpoints" not in q.parts and "__pycache__" not in q.parts)
            found.extend(str(q) for q in files)
        elif p.is_file():
            if p.suffix not in SUFFIXES:
                raise ValueError(f"PATH {path!r} is neither a .py file, a .ipynb notebook nor "
                                 "a directory")
            found.append(str(p))
        else:
            raise ValueError(f"PATH {path!r} does not exist")
    return found


def strip_magics(source: str) -> str:
    """Replace IPython ``%`` and ``!`` lines by ``pass`` at the same indentation."""
    lines = source.split("\n")
    return "\n".join(_MAGIC.sub(r"\1pass  # ", line) if _MAGIC.match(line) else line
                     for line in lines)


def read_submission(path: str) -> Submission:
    """Read ``path`` into code units; a file that cannot be read gets ``problem`` set."""
    name = os.path.basename(path)
    if path.endswith(".ipynb"):
        try:
            with open(path, encoding="utf-8") as fh:
                notebook = json.load(fh)
            cells = notebook["cells"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            return Submission(path, "notebook", (), f"not a readable notebook: {exc}")
        units = []
        for number, cell in enumerate(cells, start=1):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            if source.lstrip().startswith("%%"):
                continue
            units.append(Unit(f"{name} [cell {number}]", strip_magics(source)))
        return Submission(path, "notebook", tuple(units))
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        return Submission(path, "python", (), f"cannot read the file: {exc}")
    return Submission(path, "python", (Unit(name, source),))
