"""``convblocks evaluate`` and ``convblocks predict`` on a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest

from convblocks.cli.main import main
from convblocks.datasets import load_fashion_mnist

from .test_train import make_tiny_fashion


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalpred")
    data = make_tiny_fashion(root / "data")
    out = root / "run"
    assert main(["train", "--data-dir", str(data), "--out", str(out), "--width", "4",
                 "--batch-size", "16", "--val-size", "0", "--epochs", "2", "--quiet",
                 "--no-plots"]) == 0
    return data, out / "model.npz"


def test_evaluate_matches_predictions(trained, capsys):
    data, model_path = trained
    assert main(["evaluate", str(model_path), "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    from convblocks import load_model
    model = load_model(model_path)
    _, (xt, yt) = load_fashion_mnist(data)
    acc = np.mean(model.predict(xt).argmax(1) == yt)
    assert f"test accuracy {acc:.2%}" in text and "Ankle boot" in text and "recall" in text


def test_evaluate_errors(trained, tmp_path, capsys):
    data, model_path = trained
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["evaluate", str(bad), "--data-dir", str(data)]) == 1
    assert "bad.npz" in capsys.readouterr().err
    assert main(["evaluate", str(model_path), "--data-dir", str(tmp_path)]) == 1
    assert "were not found" in capsys.readouterr().err


def test_predict_npy_and_png(trained, tmp_path, capsys):
    data, model_path = trained
    from PIL import Image
    from convblocks import load_model
    _, (xt, yt) = load_fashion_mnist(data)
    probs = load_model(model_path).predict(xt[:2])
    np.save(tmp_path / "one.npy", (xt[0, ..., 0] * 255).round().astype(np.uint8))
    np.save(tmp_path / "two.npy", xt[:2])
    Image.fromarray((xt[1, ..., 0] * 255).round().astype(np.uint8)).resize((56, 56)).save(
        tmp_path / "big.png")
    assert main(["predict", str(model_path), str(tmp_path / "one.npy"),
                 str(tmp_path / "two.npy"), str(tmp_path / "big.png"), "--top", "2"]) == 0
    out = capsys.readouterr().out
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")
    top0 = names[int(probs[0].argmax())]
    assert f"one.npy: {top0} {probs[0].max():.1%}" in out
    assert f"two.npy[1]: {names[int(probs[1].argmax())]}" in out
    assert "resized from 56x56 to 28x28" in out
    assert out.count(",") == 4                       # --top 2: two classes on each of 4 lines


def test_predict_errors(trained, tmp_path, capsys):
    _, model_path = trained
    np.save(tmp_path / "wrong.npy", np.zeros((10, 10), dtype=np.float32))
    (tmp_path / "junk.png").write_bytes(b"junk")
    assert main(["predict", str(model_path), str(tmp_path / "wrong.npy"),
                 str(tmp_path / "junk.png")]) == 1
    err = capsys.readouterr().err
    assert "wrong.npy: expected an image" in err and "(28, 28, 1)" in err
    assert "junk.png: not a readable image" in err


def test_confusion_matrix_and_per_class_table():
    from convblocks.cli.evaluate import per_class_table
    from convblocks.plots import confusion_matrix
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)
    rows, text = per_class_table(cm, ["a", "b", "c"])
    assert rows[0] == {"class": "a", "precision": 0.5, "recall": 0.5, "support": 2}
    assert rows[1]["precision"] == 0.5 and rows[1]["recall"] == 1.0
    assert rows[2]["precision"] == 1.0 and rows[2]["recall"] == pytest.approx(2 / 3)
    assert text.splitlines()[3].split() == ["c", "1.000", "0.667", "3"]
    with pytest.raises(ValueError, match="y_pred must lie in 0..2; got 0..3"):
        confusion_matrix(y_true, np.array([0, 1, 1, 2, 0, 3]), 3)
