"""argparse converters (convblocks.cli.argtypes) and the bounds of bench's integer options."""

from __future__ import annotations

import argparse

import pytest

from convblocks.cli import bench as cli_bench
from convblocks.cli.argtypes import positive_int_at_most, short_int
from convblocks.cli.main import main


def test_positive_int_at_most():
    convert = positive_int_at_most(16)
    assert convert("1") == 1 and convert("16") == 16
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer from 1 to 16; "
                                                         r"got 17$"):
        convert("17")
    # Below 1 and not a number: positive_int's messages.
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer; got 0"):
        convert("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer; got 'x'"):
        convert("x")
    assert convert.__name__ == "positive_int_at_most_16"


def test_short_int():
    assert short_int(10**39) == str(10**39)  # 40 digits: in full
    assert short_int(-5) == "-5"
    assert short_int(10**99) == "10000000000000000000... (100 digits)"


BENCH_LIMITS = {"--repeats": cli_bench.MAX_REPEATS, "--threads": cli_bench.MAX_THREADS,
                "--gemm-size": cli_bench.MAX_GEMM_SIZE, "--batches": cli_bench.MAX_BATCHES,
                "--batch-size": cli_bench.MAX_BATCH_SIZE}


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convblocks bench")
    cli_bench.add_arguments(parser)
    return parser


def test_every_bench_integer_option_is_bounded():
    parser = bench_parser()
    bounded = {a.option_strings[0] for a in parser._actions
               if getattr(a.type, "__name__", "").startswith("positive_int")}
    assert bounded == set(BENCH_LIMITS)
    assert all(a.type is not int for a in parser._actions)
    help_text = " ".join(parser.format_help().split())
    for option, high in BENCH_LIMITS.items():
        assert f"1 to {high}" in help_text, option


@pytest.mark.parametrize("option", BENCH_LIMITS)
def test_absurd_bench_options_are_refused_by_argparse(option, capsys):
    """--threads 10**30 used to end in a ctypes OverflowError traceback and --gemm-size
    10**30 in NumPy's "Maximum allowed dimension exceeded"; now argparse's message."""
    high = BENCH_LIMITS[option]
    assert vars(bench_parser().parse_args([option, str(high)]))[option[2:].replace("-", "_")] \
        == high
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--no-torch", "--no-reexec", option, str(10**30)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"convblocks bench: error: argument {option}: expected an integer from 1 to " \
           f"{high}; got {10**30}" in err
    assert "Traceback" not in err
