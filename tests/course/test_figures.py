"""Every figure the exercise prints, from both implementations."""

import json
from pathlib import Path

import numpy as np
import pytest

from convblocks import course, loops
from convblocks.figures import compare, compute, load_expected

EXPECTED = load_expected()
CASES = {c["id"]: c for c in EXPECTED["cases"]}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "spec" / "expected_outputs.json"


@pytest.mark.parametrize("impl", [course, loops], ids=["fast", "loops"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_figure_matches_exercise(case_id, impl):
    checks = compare(CASES[case_id], compute(case_id, impl))
    assert checks, "no figures compared"
    for check in checks:
        assert check.match, f"{case_id} {check.key}: got {check.actual!r}, expected {check.expected!r}"


def test_every_documented_function_has_a_recipe():
    functions = {c["function"] for c in EXPECTED["cases"]}
    assert functions == set(course.__all__)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/spec not beside this checkout")
def test_shipped_copy_equals_shared_spec():
    assert json.loads(SHARED.read_text()) == EXPECTED


def test_compare_detects_a_wrong_figure():
    actual = compute("conv_single_step", course)
    actual["Z"] += 1e-6
    assert not compare(CASES["conv_single_step"], actual)[0].match


def test_printed_figures_agree_with_full_precision_values():
    # The documents print 8 decimals; spot-check one printed figure against the values.
    printed = CASES["conv_forward.v2020"]["printed_in_documents"]["Z's mean"]
    assert float(printed) == pytest.approx(CASES["conv_forward.v2020"]["values"]["Z_mean"], rel=1e-12)
    z = np.asarray(CASES["conv_forward.v2020"]["values"]["Z[3,2,1]"])
    assert np.allclose(z, compute("conv_forward.v2020", course)["Z[3,2,1]"], rtol=1e-12)
