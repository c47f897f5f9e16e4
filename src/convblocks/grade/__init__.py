"""Grade learners' own versions of the exercise's eight functions.

``convblocks grade PATH...`` (see :mod:`convblocks.cli.grade` and docs/grading.md). The
pieces, in the order they act:

- :mod:`.load` reads .py files and notebooks into code units, without running them;
- :mod:`.isolation` runs a submission in its own process (:mod:`.worker`), with a time
  limit per call and a memory cap, exchanging plain arrays (:mod:`.wire`);
- :mod:`.cases` builds inputs from the smallest up and shrinks failing ones;
- :mod:`.conventions` adapts names, keys, modes and layouts to the learner's;
- :mod:`.compare` judges each call against convblocks (:mod:`.truth`);
- :mod:`.hints` names recognised bugs; :mod:`.grader` ties it together;
- :mod:`.report` prints the terminal report and the JSON document.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the worker process imports only .wire and NumPy.
_LAZY = {"FUNCTIONS": "conventions", "Conventions": "conventions", "FileReport": "grader",
         "FunctionReport": "grader", "grade_file": "grader", "grade_files": "grader",
         "find_submissions": "load"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"convblocks.grade.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convblocks.grade' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
