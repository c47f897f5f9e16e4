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


def _drawn(monkeypatch):
    """Records, per figure saved, each axes' title -> {line label: (x, y)}."""
    figures = []
    save = plots._save

    def recording(fig, path):
        figures.append({ax.get_title(): {line.get_label(): (np.asarray(line.get_xdata()).tolist(),
                                                            np.asarray(line.get_ydata(), float))
                                         for line in ax.get_lines()}
                        for ax in fig.axes})
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", recording)
    return figures


def test_plot_history_refuses_curves_that_do_not_cover_the_same_epochs(tmp_path):
    """5 training losses and 3 validation losses: the validation curve was dropped without
    a word. Nothing tells which 3 epochs they belong to, so the call is refused by key."""
    h = {"loss": [1.0, 0.8, 0.6, 0.5, 0.4], "accuracy": [0.1, 0.3, 0.5, 0.6, 0.7],
         "val_loss": [0.9, 0.7, 0.6], "val_accuracy": [0.2, 0.4, 0.5]}
    with pytest.raises(ValueError, match=r"history\['val_loss'\] has 3 entries but "
                                         r"history\['loss'\] has 5; expected one entry per "
                                         r"epoch in every curve \(None for an epoch without"):
        plots.plot_history(h, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"history\['accuracy'\] has 4 entries but "
                                         r"history\['loss'\] has 5"):
        plots.plot_history({**h, "accuracy": h["accuracy"][:4], "val_loss": h["loss"],
                            "val_accuracy": h["accuracy"]}, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"history\['val_accuracy'\] has 2 entries but "
                                         r"history\['val_loss'\] has 3"):   # no training curve
        plots.plot_history({"val_loss": [0.9, 0.7, 0.6], "val_accuracy": [0.2, 0.4]},
                           tmp_path / "h.png")
    for bad, got in ((0.5, "float"), ("0.5", "str"), ([[1.0, 2.0]], r"list of shape \(1, 2\)"),
                     ([1.0, "x"], "list.*dtype <U"), ([[1.0], [1.0, 2.0]], "list$")):
        with pytest.raises(ValueError, match=rf"history\['loss'\] must be a sequence of numbers"
                                             rf", one per epoch.*got {got}"):
            plots.plot_history({"loss": bad}, tmp_path / "h.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_history_draws_real_training_histories(tmp_path, monkeypatch):
    """What Sequential.fit records, as convblocks train keeps it (a run stopped by Ctrl-C
    mid-epoch and resumed, then through metrics.json): every curve over every epoch. A
    run without validation data records val_* as None: no validation curve, no legend."""
    import json

    from convblocks import nn
    from convblocks._atomic import write_json
    from convblocks.nn.model import StopTraining

    class StopInEpoch1:
        def on_batch_end(self, batch, logs):
            if len(seen) == 1 and batch == 1:
                raise StopTraining

        def on_epoch_end(self, epoch, logs):
            seen.append(epoch)

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)), rng.integers(0, 3, 48)
    val = (x[:16], y[:16])

    def fit(validation_data, **kw):
        model = nn.Sequential([nn.Dense(3)], input_shape=(6,), seed=0, dtype="float64")
        model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(0.1))
        return model, model.fit(x, y, epochs=3, batch_size=16, seed=1,
                                validation_data=validation_data, **kw)

    seen = []
    model, first = fit(val, callbacks=[StopInEpoch1()])         # Ctrl-C in epoch 2
    assert len(first["loss"]) == 1
    state = model.epoch_state
    rest = model.fit(x, y, epochs=3, batch_size=16, seed=1, validation_data=val,
                     initial_epoch=state["epoch"], initial_batch=state["batch"],
                     epoch_state=state)
    resumed = {k: first[k] + rest[k] for k in first}           # as Checkpoint keeps it
    write_json(tmp_path / "metrics.json", {"history": resumed})
    resumed = json.loads((tmp_path / "metrics.json").read_text())["history"]
    _, no_val = fit(None)
    assert no_val["val_loss"] == [None] * 3

    figures = _drawn(monkeypatch)
    plots.plot_history(resumed, tmp_path / "resumed.png")
    plots.plot_history(no_val, tmp_path / "no_val.png")
    plots.plot_history({"loss": [1.0, None, 0.5], "val_loss": [0.9, 0.7, None]},
                       tmp_path / "gaps.png")
    plots.plot_history({"val_loss": [0.9, 0.7]}, tmp_path / "val_only.png")

    with_val, without_val, gaps, val_only = figures
    for title in ("loss", "accuracy"):
        assert set(with_val[title]) == {"training", "validation"}
        for label, prefix in (("training", ""), ("validation", "val_")):
            xs, ys = with_val[title][label]
            assert xs == [1, 2, 3]
            np.testing.assert_array_equal(ys, resumed[prefix + title])
        assert set(without_val[title]) == {"training"}
        assert without_val[title]["training"][0] == [1, 2, 3]
    np.testing.assert_array_equal(gaps["loss"]["training"][1], [1.0, np.nan, 0.5])
    np.testing.assert_array_equal(gaps["loss"]["validation"][1], [0.9, 0.7, np.nan])
    assert val_only["loss"] == {"validation": ([1, 2], pytest.approx([0.9, 0.7]))}
    assert val_only["accuracy"] == {}
    assert (tmp_path / "val_only.png").read_bytes()[:8] == PNG
