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


def test_predict_with_a_checkpoint_names_the_classes(trained, tmp_path, capsys):
    """A checkpoint has no class list of its own; its data set names the classes."""
    data, model_path = trained
    from convblocks import load_model
    _, (xt, _) = load_fashion_mnist(data)
    checkpoint = model_path.parent / "checkpoint.npz"
    probs = load_model(checkpoint).predict(xt[:1])
    np.save(tmp_path / "one.npy", xt[:1])
    assert main(["predict", str(checkpoint), str(tmp_path / "one.npy")]) == 0
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")
    assert f"one.npy: {names[int(probs[0].argmax())]} " in capsys.readouterr().out


def test_predict_errors(trained, tmp_path, capsys):
    _, model_path = trained
    np.save(tmp_path / "wrong.npy", np.zeros((10, 10), dtype=np.float32))
    (tmp_path / "junk.png").write_bytes(b"junk")
    assert main(["predict", str(model_path), str(tmp_path / "wrong.npy"),
                 str(tmp_path / "junk.png")]) == 1
    err = capsys.readouterr().err
    assert "wrong.npy: expected an image" in err and "(28, 28, 1)" in err
    assert "junk.png: not a readable image" in err
    # not .npy files under a .npy name: said so, not "pickled data" (np.load's guess)
    (tmp_path / "junk.npy").write_bytes(b"junk bytes")
    np.savez(tmp_path / "archive.npz", a=np.zeros((28, 28)))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    for name in ("junk.npy", "archive.npy"):
        assert main(["predict", str(model_path), str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert f"{name}: not a readable .npy array (no .npy header" in err
        assert "pickle" not in err


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


def test_evaluate_clean_errors(trained, tmp_path, capsys):
    data, model_path = trained
    assert main(["evaluate", str(model_path.parent), "--data-dir", str(data)]) == 1
    assert f"{model_path.parent}: cannot read it (Is a directory)" in capsys.readouterr().err
    for size in ("0", "-5"):
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", str(model_path), "--batch-size", size])
        assert exc.value.code == 2
        assert f"argument --batch-size: expected a positive integer; got {size}" in \
            capsys.readouterr().err
    from convblocks import nn
    six = tmp_path / "six.npz"
    nn.Sequential([nn.Flatten(), nn.Dense(6)], input_shape=(28, 28, 1), seed=0).save(six)
    assert main(["evaluate", str(six), "--data-dir", str(data)]) == 1
    assert ("six.npz does not fit fashion-mnist: the model outputs shape (6,); expected 10"
            in capsys.readouterr().err)


def write_png_header(path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` 8-bit grayscale pixels (no data)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                       8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_predict_clean_errors(trained, tmp_path, capsys):
    _, model_path = trained
    write_png_header(tmp_path / "bomb.png", 20000, 20000)
    assert main(["predict", str(model_path.parent), str(tmp_path / "bomb.png")]) == 1
    assert f"{model_path.parent}: cannot read it (Is a directory)" in capsys.readouterr().err
    assert main(["predict", str(model_path), str(tmp_path / "bomb.png")]) == 1
    assert "bomb.png: image too large to read safely" in capsys.readouterr().err


def test_predict_empty_npy_batch_is_an_error(trained, tmp_path, capsys):
    _, model_path = trained
    np.save(tmp_path / "none.npy", np.zeros((0, 28, 28, 1), np.float32))
    assert main(["predict", str(model_path), str(tmp_path / "none.npy")]) == 1
    assert "none.npy: expected at least one image; got shape (0, 28, 28, 1)" in \
        capsys.readouterr().err


def test_load_image_scales_by_bit_depth(tmp_path):
    from PIL import Image

    from convblocks.cli.predict import load_image

    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (28, 28)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")               # mode I;16
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    expected = deep.astype(np.float32) / np.float32(65535)
    x, note = load_image(tmp_path / "deep.png", (28, 28, 1))
    assert note is None and x.dtype == np.float32 and x.shape == (1, 28, 28, 1)
    np.testing.assert_allclose(x[0, ..., 0], expected, rtol=1e-6)
    x, _ = load_image(tmp_path / "deep.png", (28, 28, 3))            # grayscale -> RGB
    np.testing.assert_allclose(x[0], np.repeat(expected[..., None], 3, -1), rtol=1e-6)
    Image.fromarray(np.full((56, 56), 30000, np.uint16)).save(tmp_path / "big16.png")
    x, note = load_image(tmp_path / "big16.png", (28, 28, 1))
    assert "resized from 56x56 to 28x28" in note
    np.testing.assert_allclose(x, 30000 / 65535, rtol=1e-6)

    unit = rng.random((28, 28), dtype=np.float32)
    Image.fromarray(unit).save(tmp_path / "unit.tif")                # mode F
    np.testing.assert_array_equal(load_image(tmp_path / "unit.tif", (28, 28, 1))[0][0, ..., 0],
                                  unit)

    eight = rng.integers(0, 256, (28, 28))
    np.save(tmp_path / "i64.npy", eight)                             # int64 0..255
    np.testing.assert_allclose(load_image(tmp_path / "i64.npy", (28, 28, 1))[0][0, ..., 0],
                               eight / 255, rtol=1e-6)
    np.save(tmp_path / "u16.npy", deep)
    np.testing.assert_allclose(load_image(tmp_path / "u16.npy", (28, 28, 1))[0][0, ..., 0],
                               expected, rtol=1e-6)


def corner(value, dtype) -> np.ndarray:
    """A 28x28 image of zeros but for ``value`` in its corner."""
    a = np.zeros((28, 28), dtype)
    a[0, 0] = value
    return a


def save_tif(path, array) -> None:
    from PIL import Image
    Image.fromarray(array).save(path)


@pytest.mark.parametrize("name, make, message", [
    ("i64.npy", lambda p: np.save(p, corner(300, np.int64)),
     "i64.npy: int64 values must be pixel values 0..255; got 0..300"),
    ("neg.npy", lambda p: np.save(p, corner(-1, np.int16)),
     "neg.npy: int16 values must be pixel values 0..255; got -1..0"),
    ("f.npy", lambda p: np.save(p, corner(255.0, np.float32)),
     "f.npy: float32 values must be in [0, 1]; got 0..255"),
    ("nan.npy", lambda p: np.save(p, corner(np.nan, np.float64)),
     "nan.npy: float64 values must be in [0, 1]"),
    ("f.tif", lambda p: save_tif(p, corner(2.0, np.float32)),
     "f.tif: float32 values must be in [0, 1]; got 0..2"),
    ("i32.tif", lambda p: save_tif(p, corner(70000, np.int32)),
     "i32.tif: 32-bit image values must be 16-bit pixel values 0..65535; got 0..70000"),
])
def test_load_image_rejects_out_of_range_values(tmp_path, name, make, message):
    from convblocks.cli.predict import load_image

    make(tmp_path / name)
    with pytest.raises(ValueError) as exc:
        load_image(tmp_path / name, (28, 28, 1))
    assert message in str(exc.value)


def test_predict_16_bit_png_equals_its_float_array(trained, tmp_path, capsys):
    from PIL import Image

    _, model_path = trained
    deep = np.zeros((28, 28), np.uint16)
    deep[8:20, 6:22] = 60000                                         # a light block on black
    Image.fromarray(deep).save(tmp_path / "img.png")
    np.save(tmp_path / "img.npy", deep.astype(np.float32) / np.float32(65535))
    assert main(["predict", str(model_path), str(tmp_path / "img.png"),
                 str(tmp_path / "img.npy")]) == 0
    png_line, npy_line = capsys.readouterr().out.splitlines()
    assert png_line.removeprefix(f"{tmp_path / 'img.png'}:") == \
        npy_line.removeprefix(f"{tmp_path / 'img.npy'}:")


def test_predict_into_a_closed_pipe_ends_quietly(trained, tmp_path):
    from .test_train import closed_pipe_run

    _, model_path = trained
    np.save(tmp_path / "x.npy", np.zeros((50, 28, 28, 1), np.float32))
    r = closed_pipe_run(["predict", str(model_path), str(tmp_path / "x.npy")])
    assert r.returncode == 1 and r.stderr == ""


def test_evaluation_loss_comes_from_the_logits_even_where_softmax_underflows():
    """A true class far below the others has probability 0 in float32; its loss is
    still log-sum-exp minus its logit (about 200 here), not -log of the smallest float."""
    from convblocks import nn
    from convblocks.cli.evaluate import evaluate_model

    model = nn.Sequential([nn.Flatten(), nn.Dense(3)], input_shape=(1, 1, 1), seed=0)
    model.compile(loss=nn.SoftmaxCrossEntropy(), optimizer=nn.SGD(lr=0.1))
    params = model.params()
    params["1.kernel"][...] = [[100.0, -100.0, 0.0]]
    params["1.bias"][...] = 0.0
    x = np.ones((2, 1, 1, 1), dtype=np.float32)
    y = np.array([1, 0])  # logits (100, -100, 0): true class 1 underflows, class 0 is right
    result = evaluate_model(model, x, y, ["a", "b", "c"])
    assert result["probs"][0, 1] == 0.0  # the underflow this test is about
    lse = 100.0 + np.log1p(np.exp(-100.0) + np.exp(-200.0))
    np.testing.assert_allclose(result["loss"], ((lse + 100.0) + (lse - 100.0)) / 2, rtol=1e-6)
    assert result["accuracy"] == 0.5
