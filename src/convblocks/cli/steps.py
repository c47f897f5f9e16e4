"""``convblocks steps``: the exercise's figures, recomputed and checked.

Runs every recipe of the exercise (the inputs it prints figures for) through the
vectorized functions and the literal loops, and prints each figure beside the one the
exercise printed, marked MATCH or DIFFERS. Exit status 0 when everything matches.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HELP = "walk through the exercise's eight functions on its own inputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--impl", choices=("both", "fast", "loops"), default="both",
                        help="which implementation to check (default: both)")
    parser.add_argument("--case", action="append", metavar="ID",
                        help="only this case (repeatable); default: every case")
    parser.add_argument("--no-color", action="store_true", help="plain output")


def _fmt(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        # repr: the shortest digits that give back the same float (what the spec prints)
        return repr(float(arr.item())) if arr.dtype.kind == "f" else repr(arr.item())
    if isinstance(value, tuple):
        return str(value)
    with np.printoptions(precision=8, suppress=False, linewidth=10_000, threshold=40):
        text = np.array2string(arr, separator=" ")
    return " ".join(text.split())


def run(args: argparse.Namespace) -> int:
    from convblocks import course, loops
    from convblocks.figures import compare, compute, load_expected

    color = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
    green, red, dim, reset = ("\033[32m", "\033[31m", "\033[2m", "\033[0m") if color else ("",) * 4
    impls = {"fast": course, "loops": loops}
    chosen = ["fast", "loops"] if args.impl == "both" else [args.impl]
    expected = load_expected()
    cases = expected["cases"]
    if args.case:
        known = [c["id"] for c in cases]
        unknown = [c for c in args.case if c not in known]
        if unknown:
            print(f"convblocks steps: unknown case {unknown[0]!r}; known cases: {', '.join(known)}",
                  file=sys.stderr)
            return 2
        cases = [c for c in cases if c["id"] in args.case]

    n_fig = n_ok = 0
    failed_cases = []
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] {case['function']}  ({case['id']})")
        print(f"  {dim}recipe: {case['recipe']}{reset}")
        print("  the exercise printed:")
        for key, text in case["printed_in_documents"].items():
            print(f"    {key} = {' '.join(str(text).split())}")
        results = {}
        for name in chosen:
            try:
                results[name] = compare(case, compute(case["id"], impls[name]))
            except Exception as exc:  # report, keep going: this is a walkthrough
                results[name] = exc
        print("  convblocks computed:")
        first = results[chosen[0]]
        keys = list(case["values"])
        for i, key in enumerate(keys):
            shown = _fmt(first[i].actual) if not isinstance(first, Exception) else "(error)"
            marks = []
            for name in chosen:
                res = results[name]
                n_fig += 1
                if isinstance(res, Exception):
                    marks.append(f"{red}{name}: ERROR{reset}")
                elif res[i].match:
                    n_ok += 1
                    marks.append(f"{green}{name}: MATCH{reset}")
                else:
                    marks.append(f"{red}{name}: DIFFERS (max |diff| {res[i].max_abs_error:.3g}){reset}")
            print(f"    {key} = {shown}")
            print(f"      {'   '.join(marks)}")
        for name in chosen:
            if isinstance(results[name], Exception):
                print(f"  {red}{name} raised {type(results[name]).__name__}: {results[name]}{reset}")
        if any(isinstance(r, Exception) or not all(c.match for c in r) for r in results.values()):
            failed_cases.append(case["id"])
        print()
    verdict = f"{green}every figure matches{reset}" if not failed_cases else \
        f"{red}{len(failed_cases)} case(s) differ: {', '.join(failed_cases)}{reset}"
    print(f"{n_ok}/{n_fig} figures match across {len(cases)} cases "
          f"({' and '.join(chosen)}): {verdict}")
    return 0 if not failed_cases else 1
