"""The bug corpus: one small, named source edit of corpus/correct_loops.py per bug class.

Each entry: (name, [(old text, new text), ...], expected verdicts of the functions that
do not pass, a hint fragment each must show, extra command-line options). Every old
text occurs exactly once in the template (checked when the submission is written).
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
TEMPLATE = CORPUS / "correct_loops.py"

_BIAS = "    Z = Z + b.item()\n"
_STRIDE_CONV = ("            vert_start = h * stride\n            vert_end = vert_start + f\n"
                "            for w in range(n_W):\n                horiz_start = w * stride\n")

# name, edits, {function: (verdict, hint fragment)}, options
BUGS = [
    ("stride_ignored_pool_backward",
     [("vert_start, horiz_start = h * stride, w * stride", "vert_start, horiz_start = h, w")],
     {"pool_backward": ("fail", "stride ignored")}, {}),
    ("stride_ignored_conv_forward",
     [(_STRIDE_CONV, _STRIDE_CONV.replace("h * stride", "h").replace("w * stride", "w"))],
     {"conv_forward": ("fail", "stride ignored")}, {}),
    ("pad0_unpadding",
     [("da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]", "da_prev_pad[pad:-pad, pad:-pad, :]")],
     {"conv_backward": ("error", "pad-0 un-padding")}, {}),
    ("overwrite_pool_backward",
     [("+= mask * dA[i, h, w, c]", "= mask * dA[i, h, w, c]")],
     {"pool_backward": ("fail", "overwrite instead of accumulate")}, {}),
    ("overwrite_plus_equals_dW",
     [("dW[:, :, :, c] += a_slice", "dW[:, :, :, c] =+ a_slice")],
     {"conv_backward": ("fail", "overwrite instead of accumulate")}, {}),
    ("overwrite_dW_and_db",
     [("dW[:, :, :, c] += a_slice", "dW[:, :, :, c] = a_slice"), ("db[:, :, :, c] += dZ", "db[:, :, :, c] = dZ")],
     {"conv_backward": ("fail", "dW keeps only the last window's a_slice * dZ")}, {}),
    ("overwrite_dA_prev",
     [("da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W",
       "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] = W")],
     {"conv_backward": ("fail", "overwrite instead of accumulate")}, {}),
    ("max_started_at_zero",
     [("A[i, h, w, c] = np.max(a_prev_slice)", "A[i, h, w, c] = max(0, np.max(a_prev_slice))")],
     {"pool_forward": ("fail", "a maximum that starts at 0")}, {}),
    ("pads_every_axis",
     [("np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))", "np.pad(X, pad")],
     {"zero_pad": ("fail", "pads every axis"),
      "conv_forward": ("error", "fails only because your zero_pad fails"),
      "conv_backward": ("error", "fails only because your zero_pad fails")}, {}),
    ("nonzero_initial_buffer",
     [("    dW = np.zeros(W.shape)\n", "    dW = np.ones(W.shape)\n")],
     {"conv_backward": ("fail", "non-zero initial buffer")}, {}),
    ("wrong_shape_initial_buffer",
     [("dA_prev = np.zeros(A_prev.shape)  # the pooling gradient",
       "dA_prev = np.zeros(dA.shape)  # the pooling gradient")],
     {"pool_backward": ("error", "wrong-shape initial buffer")}, {}),
    ("dz_and_slice_swapped",
     [("+= W[:, :, :, c] * dZ[i, h, w, c]\n                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]",
       "+= a_slice * dZ[i, h, w, c]\n                    dW[:, :, :, c] += W[:, :, :, c] * dZ[i, h, w, c]")],
     {"conv_backward": ("fail", "dZ and the slice swapped")}, {}),
    ("wrong_divisor_average_backward",
     [("+= distribute_value(da, shape)", "+= np.ones(shape) * da / f")],
     {"pool_backward": ("fail", "wrong divisor in average backward")}, {}),
    ("wrong_divisor_distribute_value",
     [("average = dz / (n_H * n_W)", "average = dz / (n_H + n_W)")],
     {"distribute_value": ("fail", "wrong divisor"),
      "pool_backward": ("fail", "fails only because your distribute_value fails")}, {}),
    ("wrong_output_size_formula",
     [("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1", "n_H = int((n_H_prev - f + 2 * pad) / stride)")],
     {"conv_forward": ("fail", "wrong output-size formula")}, {}),
    # ceil instead of floor: a wrong shape on small inputs, a broadcast error on others;
    # the hint must quote the shown (smallest) case, and stride is not to blame.
    ("output_size_ceil",
     [("n_H = int((n_H_prev - f + 2 * pad) / stride) + 1", "n_H = int(np.ceil((n_H_prev - f + 2 * pad) / stride)) + 1"),
      ("n_W = int((n_W_prev - f + 2 * pad) / stride) + 1", "n_W = int(np.ceil((n_W_prev - f + 2 * pad) / stride)) + 1")],
     {"conv_forward": ("error", "wrong output-size formula")}, {}),
    ("float_output_size",
     [("n_H = int(1 + (n_H_prev - f) / stride)", "n_H = 1 + (n_H_prev - f) / stride")],
     {"pool_forward": ("error", "a size is a float")}, {}),
    ("wrong_divisor_output_size_average_backward",
     [("+= distribute_value(da, shape)", "+= np.ones(shape) * da / (n_H * n_W)")],
     {"pool_backward": ("fail", "yours divides each window's dA by n_H * n_W = ")}, {}),
    ("missing_bias",
     [(_BIAS, "    Z = Z\n")],
     {"conv_single_step": ("fail", "missing bias"),
      "conv_forward": ("fail", "fails only because your conv_single_step fails")}, {}),
    ("bias_inside_sum",
     [("s = np.multiply(a_slice_prev, W)", "s = np.multiply(a_slice_prev, W) + b"), (_BIAS, "    Z = Z\n")],
     {"conv_single_step": ("fail", "bias inside the sum"),
      "conv_forward": ("fail", "fails only because your conv_single_step fails")}, {}),
    # Only slightly wrong (a relative error about 1e-4): still a failure, not a pass.
    ("slightly_off_single_step",
     [(_BIAS, "    Z = Z + b.item() + 1e-4\n")],
     {"conv_single_step": ("fail", ""),
      "conv_forward": ("fail", "fails only because your conv_single_step fails")}, {}),
    # The cache holds an array of the input's shape but not the input.
    ("cache_holds_another_array",
     [("    cache = (A_prev, hparameters)\n", "    cache = (np.zeros_like(A_prev), hparameters)\n")],
     {"pool_forward": ("fail", "")}, {}),
    ("float_of_array_numpy2",
     [(_BIAS, "    Z = float(Z + b)\n")],
     {"conv_single_step": ("error", "float() of an array under NumPy 2"),
      "conv_forward": ("error", "fails only because your conv_single_step fails")}, {}),
    ("single_step_returns_array",
     [(_BIAS, "    Z = Z + b\n")],
     {"conv_single_step": ("fail", "returns an array of shape (1, 1, 1), not a float: the value is right; "
                                   "return Z.item()"),
      "conv_forward": ("error", "fails only because your conv_single_step fails")}, {}),
    ("input_modified_in_place",
     [("    mask = np.zeros(x.shape, dtype=bool)\n",
       "    x[x < np.max(x)] = 0\n    mask = np.zeros(x.shape, dtype=bool)\n")],
     {"create_mask_from_window": ("fail", "input modified in place"),
      "pool_backward": ("fail", "fails only because your create_mask_from_window fails")}, {}),
    ("ties_all_marked",
     [("    mask = np.zeros(x.shape, dtype=bool)\n    mask[np.unravel_index(np.argmax(x), x.shape)] = True\n",
       "    mask = x == np.max(x)\n")],
     {"create_mask_from_window": ("ties", "marks every tied maximum"),
      "pool_backward": ("ties", "marks every tied maximum")}, {}),
    # The common `if x[i, j] >= best` loop marks the LAST tied maximum: one maximum, like
    # convblocks' first, so a note ("ties"), as for marking every tied maximum.
    ("ties_last_marked",
     [("    mask[np.unravel_index(np.argmax(x), x.shape)] = True\n",
       "    best, where = None, None\n    for i in range(x.shape[0]):\n        for j in range(x.shape[1]):\n"
       "            if best is None or x[i, j] >= best:\n                best, where = x[i, j], (i, j)\n"
       "    mask[where] = True\n")],
     {"create_mask_from_window": ("ties", "yours marks the last maximum (>=); convblocks and "
                                          "PyTorch mark the first (> or np.argmax)"),
      "pool_backward": ("ties", "yours marks the last maximum (>=)")}, {}),
    ("missing_function",
     [("def distribute_value(", "def spread_value(")],
     {"distribute_value": ("missing", "no function named 'distribute_value'"),
      "pool_backward": ("error", "fails only because your distribute_value fails")}, {}),
    ("renamed_function_mapped",
     [("def distribute_value(", "def spread_value("), ("+= distribute_value(da, shape)", "+= spread_value(da, shape)")],
     {}, {"map": "distribute_value=spread_value"}),
    ("name_words_swapped_detected",
     [("def conv_forward(", "def forward_conv(")], {}, {}),
    ("keys_detected",
     [('    pad = hparameters["pad"]\n    n_H', '    pad = hparameters["padding"]\n    n_H'),
      ('    pad = hparameters["pad"]\n    (m, n_H', '    pad = hparameters["padding"]\n    (m, n_H')], {}, {}),
    # A key misspelt in ONE function is a typo, not the course's convention: the
    # other function reading the key must not be blamed (nor the file's keys changed).
    ("key_typo_conv_forward_only",
     [('    pad = hparameters["pad"]\n    n_H', '    pad = hparameters["padding"]\n    n_H')],
     {"conv_forward": ("error", "but your conv_backward reads hparameters['pad'], the exercise's key: a typo?")}, {}),
    ("key_typo_conv_backward_only",
     [('    pad = hparameters["pad"]\n    (m, n_H', '    pad = hparameters["padding"]\n    (m, n_H')],
     {"conv_backward": ("error", "but your conv_forward reads hparameters['pad'], the exercise's key: a typo?")}, {}),
    ("keys_given",
     [('    pad = hparameters["pad"]\n    n_H', '    pad = hparameters["padding"]\n    n_H'),
      ('    pad = hparameters["pad"]\n    (m, n_H', '    pad = hparameters["padding"]\n    (m, n_H')],
     {}, {"keys": "pad=padding"}),
    ("modes_renamed",
     [('elif mode == "average":\n                        A[', 'elif mode == "avg":\n                        A['),
      ('elif mode == "average":\n                        da', 'elif mode == "avg":\n                        da')],
     {"pool_forward": ("fail", "mode 'average' gives all zeros"),
      "pool_backward": ("fail", "mode 'average' gives all zeros")}, {}),
    ("modes_renamed_mapped",
     [('elif mode == "average":\n                        A[', 'elif mode == "avg":\n                        A['),
      ('elif mode == "average":\n                        da', 'elif mode == "avg":\n                        da')],
     {}, {"modes": "average=avg"}),
    # Found by mutation fuzzing: each once drew a hint naming another bug (see
    # test_hints_do_not_name_a_bug_the_evidence_does_not_show in test_grade.py).
    ("mode_branch_raises",  # an IndexError is not "its branch never ran"
     [("+= mask * dA[i, h, w, c]", "+= mask * dA[i + 1, h, w, c]")],
     {"pool_backward": ("error", "only mode 'max' fails")}, {}),
    ("mode_branch_never_runs_no_max_at_zero",  # all zeros is not "a max started at 0"
     [('if mode == "max":\n                        A[', 'if mode == "maxx":\n                        A[')],
     {"pool_forward": ("fail", "mode 'max' gives all zeros: its branch never ran")}, {}),
    ("mode_not_max_branch_swapped",
     [('if mode == "max":\n                        A[', 'if mode != "max":\n                        A[')],
     {"pool_forward": ("fail", "")}, {}),
    # marks a tied maximum that is neither the first, the last nor all of them: the mask
    # fails (as pool_backward does), so pool_backward's failure is the mask's
    ("mask_first_max_column_major",
     [("mask[np.unravel_index(np.argmax(x), x.shape)] = True",
       "mask[np.unravel_index(np.argmax(x.T), x.T.shape)[::-1]] = True")],
     {"create_mask_from_window": ("fail", ""),
      "pool_backward": ("fail", "fails only because your create_mask_from_window fails")}, {}),
    ("mask_transposed_index",  # lands on the minimum of one small window only
     [("mask[np.unravel_index(np.argmax(x), x.shape)] = True",
       "mask[np.unravel_index(np.argmax(x.T), x.shape)] = True")],
     {"create_mask_from_window": ("fail", ""),
      "pool_backward": ("fail", "fails only because your create_mask_from_window fails")}, {}),
    ("unpadding_without_offset",  # fails only for pad > 0, not an overwrite
     [("da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]", "da_prev_pad[:n_H_prev, :n_W_prev, :]")],
     {"conv_backward": ("fail", "")}, {}),
    ("unpadding_one_bound_unpadded",  # a broadcast error for pad > 0, not a buffer shape
     [("da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]", "da_prev_pad[0:pad + n_H_prev, pad:pad + n_W_prev, :]")],
     {"conv_backward": ("error", "")}, {}),
    ("wrong_filter_in_dA_prev",  # only several filters fail, overlapping windows pass
     [("+= W[:, :, :, c] * dZ[i, h, w, c]", "+= W[:, :, :, c - 1] * dZ[i, h, w, c]")],
     {"conv_backward": ("fail", "")}, {}),
    ("filters_loop_over_input_channels",  # an IndexError, not an overwrite
     [("for c in range(n_C):\n                    vert_start = h * stride",
       "for c in range(n_C_prev):\n                    vert_start = h * stride")],
     {"conv_backward": ("error", "")}, {}),
    ("average_backward_shifted_row",  # not a constant factor: not a divisor
     [("da = dA[i, h, w, c]", "da = dA[i, h - 1, w, c]")],
     {"pool_backward": ("fail", "only mode 'average' fails")}, {}),
    ("gradients_returned_in_another_order",  # not a wrong-shape buffer
     [("    return dA_prev, dW, db\n", "    return dA_prev, db, dW\n")],
     {"conv_backward": ("fail", "returns its gradients in another order, (dA_prev, db, dW)")}, {}),
    # Isolation failure modes.
    ("infinite_loop",
     [("    average = dz / (n_H * n_W)\n", "    while n_H > 0:\n        n_W += 0\n    average = dz / (n_H * n_W)\n")],
     {"distribute_value": ("error", "never returned"),
      # not called again with the hanging helper: one timeout, not two
      "pool_backward": ("error", "fails only because your distribute_value fails: not run with "
                                 "your distribute_value, which never returned")}, {}),
    # Correct but slow: smaller cases pass, a bigger one exceeds --timeout (1.5 s in tests).
    ("slow_conv_single_step",
     [("    s = np.multiply(a_slice_prev, W)\n", "    import time\n    time.sleep(0.02)\n"
       "    s = np.multiply(a_slice_prev, W)\n")],
     {"conv_forward": ("error", "too slow: smaller cases pass; this case (")}, {}),
    ("memory_bomb",
     [("    X_pad = np.pad(", "    hoard = []\n    while True:\n        hoard.append(np.empty(10**8))\n    X_pad = np.pad(")],
     {"zero_pad": ("error", "ran out of memory"),
      "conv_forward": ("error", "fails only because your zero_pad fails"),
      "conv_backward": ("error", "fails only because your zero_pad fails")}, {}),
    ("segfault_in_function",
     [("    s = np.multiply(a_slice_prev, W)\n", "    import ctypes\n    ctypes.string_at(0)\n    s = np.multiply(a_slice_prev, W)\n")],
     {"conv_single_step": ("error", "killed by SIGSEGV"),
      "conv_forward": ("error", "fails only because your conv_single_step fails")}, {}),
    ("sys_exit_at_import",
     [("\n\ndef pool_forward(", "\n\nimport sys\nsys.exit('finished')\n\n\ndef pool_forward(")], {}, {}),
    ("os_exit_at_import",
     [("\n\ndef pool_forward(", "\n\nimport os\nos._exit(3)\n\n\ndef pool_forward(")], {}, {}),
    ("infinite_loop_at_import",
     [("\n\ndef pool_forward(", "\n\nwhile True:\n    pass\n\n\ndef pool_forward(")], {}, {}),
    ("print_flood",
     [("\n\ndef zero_pad(", "\n\nfor k in range(200000):\n    print('flood', k)\n\n\ndef zero_pad(")], {}, {}),
    ("failed_import_used",
     [("import numpy as np\n", "import numpy as np\nfrom public_tests import *\nfrom cnn_utils import pad_helper\n"),
      ("    X_pad = np.pad(X,", "    X_pad = pad_helper(X,")],
     {"zero_pad": ("error", "loading the code had failures"),
      "conv_forward": ("error", "fails only because your zero_pad fails"),
      "conv_backward": ("error", "fails only because your zero_pad fails")}, {}),
]


def apply_edits(source: str, edits: list[tuple[str, str]], name: str) -> str:
    for old, new in edits:
        count = source.count(old)
        if count != 1:
            raise AssertionError(f"bug {name!r}: {old!r} occurs {count} times in the template")
        source = source.replace(old, new)
    return source


def write_bug_submissions(directory: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write each (or the named) bug submission into ``directory``; name -> path."""
    template = TEMPLATE.read_text()
    paths = {}
    for name, edits, _, _ in BUGS:
        if names is not None and name not in names:
            continue
        path = directory / f"{name}.py"
        path.write_text(apply_edits(template, edits, name))
        paths[name] = path
    return paths
