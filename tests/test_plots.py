"""convblocks.plots: bad input refused by name, odd but valid input drawn, files whole."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from convblocks import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_filters_refuses_an_unknown_layout_instead_of_drawing_it_as_nhwc(tmp_path):
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 5))
    with pytest.raises(ValueError, match="data_format.*'nchw'"):
        plots.plot_filters(w, tmp_path / "f.png", data_format="nchw")
    with pytest.raises(ValueError, match=r"at least one filter.*\(3, 3, 3, 0\)"):
        plots.plot_filters(np.ones((3, 3, 3, 0)), tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []
    assert plots.plot_filters(w, tmp_path / "f.png", data_format="NCHW").read_bytes()[:8] == PNG


def test_plot_confusion_refuses_anything_but_counts(tmp_path):
    for cm in (np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([[-1, 2], [0, 3]]),
               np.array([[np.nan, 2.0], [0.0, 3.0]])):
        with pytest.raises(ValueError, match="cm must hold counts"):
            plots.plot_confusion(cm, ["a", "b"], tmp_path / "c.png")
    assert list(tmp_path.iterdir()) == []
    cm = np.array([[5.0, 1.0], [0.0, 0.0]])   # whole floats, a row of zeros: fine
    assert plots.plot_confusion(cm, ["a", "b"], tmp_path / "c.png").read_bytes()[:8] == PNG


def test_plot_confusion_with_very_long_class_names_keeps_its_layout(tmp_path):
    cm = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "constrained_layout not applied ..." before
        path = plots.plot_confusion(cm, ["a" * 200, "b", "c"], tmp_path / "c.png")
    assert path.read_bytes()[:8] == PNG


def test_confusion_matrix_refuses_fractional_labels_and_bad_class_counts():
    with pytest.raises(ValueError, match=r"y_true must hold integer labels.*0\.7"):
        plots.confusion_matrix([0.7, 1.2], [0, 1], 3)
    with pytest.raises(ValueError, match="num_classes must be >= 1; got -1"):
        plots.confusion_matrix([0], [0], -1)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        plots.confusion_matrix([0], [0], 2.5)
    assert plots.confusion_matrix(np.array([0.0, 2.0]), [0, 1], 3).tolist() == \
        [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_plot_predictions_refuses_mismatched_inputs_by_name(tmp_path):
    rng = np.random.default_rng(0)
    imgs, labels, probs = rng.random((5, 8, 8, 1)), np.array([0, 1, 2, 0, 1]), rng.random((5, 3))
    classes = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\).*got \(3,\)"):
        plots.plot_predictions(imgs, labels[:3], probs, classes, tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"probs \(5, 2\)"):
        plots.plot_predictions(imgs, labels, probs, classes[:2], tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"NHWC.*\(5, 1, 8, 8\)"):
        plots.plot_predictions(imgs.transpose(0, 3, 1, 2), labels, probs, classes,
                               tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"n >= 1.*\(0, 8, 8, 1\)"):
        plots.plot_predictions(imgs[:0], labels[:0], probs[:0], classes, tmp_path / "p.png")
    with pytest.raises(ValueError, match="cols must be >= 1; got 0"):
        plots.plot_predictions(imgs, labels, probs, classes, tmp_path / "p.png", cols=0)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2; got 0\.\.3"):
        plots.plot_predictions(imgs, np.array([0, 1, 3, 0, 1]), probs, classes, tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []
    path = plots.plot_predictions(imgs, labels, probs, classes, tmp_path / "p.png", cols=2)
    assert path.read_bytes()[:8] == PNG


def test_plot_history_takes_arrays_and_empty_histories_quietly(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "No artists with labels found" before
        assert plots.plot_history({}, tmp_path / "h0.png").read_bytes()[:8] == PNG
        path = plots.plot_history({"loss": np.array([1.0, np.nan, 0.5]),
                                   "accuracy": np.array([0.5, 0.6, 0.7])}, tmp_path / "h1.png")
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(TypeError, match="history must be a dict.*list"):
        plots.plot_history([1.0, 2.0], tmp_path / "h2.png")


def test_a_failed_drawing_keeps_the_previous_png(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    path = tmp_path / "h.png"
    path.write_bytes(b"previous")

    def broken(self, f, **kw):
        f.write(b"half a png")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        plots.plot_history({"loss": [1.0], "accuracy": [0.5]}, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["h.png"]


def test_plots_never_load_pyplot():
    import subprocess
    import sys
    code = ("import sys, tempfile, os\n"
            "from convblocks import plots\n"
            "d = tempfile.mkdtemp()\n"
            "plots.plot_history({'loss': [1.0, 0.5], 'accuracy': [0.1, 0.2]}, d + '/h.png')\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"})


def test_missing_matplotlib_is_named_with_the_install_command(tmp_path, monkeypatch):
    import sys
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'convblocks\[cli\]'"):
        plots.plot_history({"loss": [1.0]}, tmp_path / "h.png")
    assert list(tmp_path.iterdir()) == []
