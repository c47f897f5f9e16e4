"""``convblocks grade PATH...``: grade learners' own eight functions against convblocks.

Each PATH is a .py file, a .ipynb notebook or a directory of them. Every file gets a
report (a verdict per function, the smallest failing input, a hint per recognised bug);
several files also get a class table. Exit status: 0 when every function of every
file passes (``ties`` counts as passing), 1 otherwise, 2 for a usage error.
See docs/grading.md.
"""

from __future__ import annotations

import argparse
import sys

from convblocks.cli.argtypes import byte_size, positive_int, positive_seconds

HELP = "grade learners' own eight functions (.py, .ipynb or a directory of them)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a .py file, a .ipynb notebook or a directory of them")
    parser.add_argument("--map", metavar="NAME=THEIRS[,...]",
                        help="the learner's function names, e.g. conv_forward=forward_conv")
    parser.add_argument("--keys", metavar="KEY=THEIRS[,...]",
                        help="hyperparameter keys, e.g. pad=padding,f=filt_size")
    parser.add_argument("--modes", metavar="MODE=THEIRS[,...]",
                        help="pooling mode names, e.g. max=maxpool,average=avrgpool")
    parser.add_argument("--layout", default="NHWC", type=str.upper, choices=("NHWC", "NCHW"),
                        help="activation layout of the learner's code (default: NHWC)")
    parser.add_argument("--weights", default="HWIO", type=str.upper, choices=("HWIO", "OIHW", "IOHW"),
                        help="filter layout; the bias has the same rank (default: HWIO)")
    parser.add_argument("--timeout", type=positive_seconds, default=10.0,
                        help="seconds per statement while loading and per call (default: 10)")
    parser.add_argument("--memory", type=byte_size, default=2 << 30,
                        help="address-space limit of the learner's process (default: 2G; 0: none)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="files graded at once (default: 2)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead")
    parser.add_argument("--no-color", action="store_true", help="plain output (also: NO_COLOR)")


def run(args: argparse.Namespace) -> int:
    from convblocks.grade import Conventions, find_submissions, grade_files
    from convblocks.grade.report import dumps, print_file, print_summary, use_color

    try:
        conventions = Conventions.from_options(map=args.map, keys=args.keys, modes=args.modes,
                                               layout=args.layout, weights=args.weights)
        paths = find_submissions(args.paths)
    except ValueError as exc:
        print(f"convblocks grade: error: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print(f"convblocks grade: error: no .py or .ipynb files in {' '.join(args.paths)}",
              file=sys.stderr)
        return 2
    color = use_color(sys.stdout, args.no_color)
    reports = []
    for report in grade_files(paths, conventions, timeout=args.timeout, memory=args.memory,
                              jobs=args.jobs):
        reports.append(report)
        if not args.json:
            print_file(report, sys.stdout, color=color)
            sys.stdout.flush()
    if args.json:
        print(dumps(reports))
    elif len(reports) > 1:
        print_summary(reports, sys.stdout, color=color)
    return 0 if all(r.passed for r in reports) else 1
