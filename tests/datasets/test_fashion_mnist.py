"""Where Fashion-MNIST/MNIST are looked for, the download path, and the errors."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from convblocks.datasets import fashion_mnist as fm
from convblocks.datasets import load_fashion_mnist, load_mnist, md5_of_file

from .conftest import FILES, make_idx_dataset

# A data set of the MNIST layout with a name no system folder has.
TINY = replace(fm.MNIST, name="tiny-mnist", url="http://127.0.0.1:9/never-used/")


def test_loads_explicit_dir_with_dtypes_and_scaling(clean_env):
    arrays = make_idx_dataset(clean_env / "d", n_train=12, n_test=6)
    (x, y), (xt, yt) = load_mnist(clean_env / "d")
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32
    assert xt.shape == (6, 28, 28, 1) and yt.dtype == np.int64 and y.shape == (12,)
    np.testing.assert_array_equal(x[..., 0], arrays[FILES[0]] / np.float32(255))
    np.testing.assert_array_equal(yt, arrays[FILES[3]])
    assert x.min() >= 0 and x.max() <= 1


def test_uncompressed_files_and_name_subfolder(clean_env):
    arrays = make_idx_dataset(clean_env / "d" / "mnist", compress=False)
    (_, y), _ = load_mnist(clean_env / "d")
    np.testing.assert_array_equal(y, arrays[FILES[1]])


def test_search_order_explicit_env_cache(clean_env, monkeypatch):
    explicit = make_idx_dataset(clean_env / "explicit", seed=1)
    env = make_idx_dataset(clean_env / "env" / "tiny-mnist", seed=2)
    cache = make_idx_dataset(fm.cache_dir("tiny-mnist"), seed=3)
    monkeypatch.setenv("CONVBLOCKS_DATA", str(clean_env / "env"))
    load = functools.partial(fm.load_idx_dataset, TINY, download=False)
    np.testing.assert_array_equal(load(clean_env / "explicit")[0][1], explicit[FILES[1]])
    np.testing.assert_array_equal(load()[0][1], env[FILES[1]])          # env beats cache
    monkeypatch.delenv("CONVBLOCKS_DATA")
    np.testing.assert_array_equal(load()[0][1], cache[FILES[1]])
    assert fm.search_dirs("tiny-mnist")[-1] == Path(clean_env / "cache" / "convblocks" / "tiny-mnist")


def test_explicit_dir_without_files_does_not_fall_back(clean_env, monkeypatch):
    make_idx_dataset(clean_env / "env")
    monkeypatch.setenv("CONVBLOCKS_DATA", str(clean_env / "env"))
    (clean_env / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="given data_dir") as info:
        fm.load_idx_dataset(TINY, clean_env / "empty")
    assert str(clean_env / "empty") in str(info.value)


def test_incomplete_folder_is_skipped(clean_env, monkeypatch):
    make_idx_dataset(clean_env / "env")
    os.remove(clean_env / "env" / FILES[2])
    want = make_idx_dataset(fm.cache_dir("tiny-mnist"), seed=5)
    monkeypatch.setenv("CONVBLOCKS_DATA", str(clean_env / "env"))
    np.testing.assert_array_equal(fm.load_idx_dataset(TINY, download=False)[1][1], want[FILES[3]])


def test_local_corrupt_file_raises_naming_it(clean_env):
    make_idx_dataset(clean_env / "d")
    path = clean_env / "d" / FILES[0]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_mnist(clean_env / "d")


def test_images_and_labels_must_agree(clean_env):
    from convblocks.datasets.idx import write_idx
    make_idx_dataset(clean_env / "d", n_train=12)
    write_idx(clean_env / "d" / FILES[1], np.zeros(11, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 12 uint8 labels"):
        load_mnist(clean_env / "d")
    write_idx(clean_env / "d" / FILES[1], np.full(12, 10, dtype=np.uint8))
    with pytest.raises(ValueError, match="label 10 out of range"):
        load_mnist(clean_env / "d")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verified_into_cache(clean_env, server):
    url, www = server
    arrays = make_idx_dataset(www)
    md5 = {f: md5_of_file(www / f) for f in FILES}
    (x, y), (xt, yt) = fm.load_idx_dataset(TINY, base_url=url, md5=md5)
    np.testing.assert_array_equal(yt, arrays[FILES[3]])
    cached = sorted(p.name for p in fm.cache_dir("tiny-mnist").iterdir())
    assert cached == sorted(FILES)                       # no stray .part files
    # Second call finds the cache: works with the server's files gone and no network.
    for f in FILES:
        os.remove(www / f)
    np.testing.assert_array_equal(fm.load_idx_dataset(TINY, download=False)[1][1], yt)


def test_download_url_from_environment(clean_env, server, monkeypatch):
    url, www = server
    make_idx_dataset(www)
    monkeypatch.setattr(fm, "MNIST", replace(fm.MNIST, md5={f: md5_of_file(www / f) for f in FILES},
                                             name="tiny-mnist"))
    monkeypatch.setenv("CONVBLOCKS_TINY_MNIST_URL", url)
    (x, _), _ = load_mnist()
    assert x.shape == (12, 28, 28, 1)


def test_checksum_mismatch_leaves_no_file(clean_env, server):
    url, www = server
    make_idx_dataset(www)
    md5 = {f: md5_of_file(www / f) for f in FILES}
    md5[FILES[0]] = "0" * 32
    with pytest.raises(ValueError, match="checksum mismatch.*train-images"):
        fm.load_idx_dataset(TINY, base_url=url, md5=md5)
    left = list(fm.cache_dir("tiny-mnist").iterdir())
    assert left == []                                     # neither the file nor a .part


GOOD = "8d4fb7e6c68d591d4c3dfef9ec88bf0d"


@pytest.mark.parametrize("md5, error, message", [
    ({FILES[0]: 123}, TypeError,
     r"md5\['train-images-idx3-ubyte.gz'\] must be a 32-hex-digit MD5 string; got 123 \(int\)"),
    ({FILES[1]: GOOD.encode()}, TypeError,
     r"md5\['train-labels-idx1-ubyte.gz'\] must be a 32-hex-digit MD5 string; got "
     r"b'8d4f.*' \(bytes\)"),
    ({FILES[2]: None}, TypeError,
     r"md5\['t10k-images-idx3-ubyte.gz'\] must be a 32-hex-digit MD5 string; got None "
     r"\(every download is verified: leave out the whole md5 argument"),
    ({FILES[3]: "d41d8cd98f00b204e9800998ecf8427"}, ValueError,
     r"md5\['t10k-labels-idx1-ubyte.gz'\] must be an MD5 digest of 32 hex digits "
     r"\(0-9, a-f\); got 'd41d8cd98f00b204e9800998ecf8427' \(31 characters\)"),
    ({"train-images.gz": GOOD}, ValueError,
     r"md5 has the key 'train-images.gz', which is none of the file names; expected a "
     r"dict of file name -> 32-hex-digit MD5 string \(file names train-images-idx3-ubyte.gz, "),
    ([GOOD] * 4, TypeError,
     r"md5 must be a dict of file name -> 32-hex-digit MD5 string .*, or None for the "
     r"published checksums; got \['8d4f.*\] \(list\)"),
    (GOOD, TypeError, r"md5 must be a dict .*got '8d4f.*' \(str\)"),
])
def test_md5_argument_is_checked_up_front(clean_env, server, md5, error, message):
    # A bad entry among valid ones: an int used to escape as an AttributeError
    # (md5.lower()) from download() -- after the files before it had been downloaded --,
    # None skipped the check, an unknown key was ignored; nothing was checked when the
    # files were found locally.
    url, www = server
    make_idx_dataset(www)
    if isinstance(md5, dict):
        md5 = {**{f: md5_of_file(www / f) for f in FILES}, **md5}
    with pytest.raises(error, match=message):
        fm.load_idx_dataset(TINY, base_url=url, md5=md5)
    assert not fm.cache_dir("tiny-mnist").exists()        # nothing was fetched
    with pytest.raises(error, match=message):             # and before any search
        load_fashion_mnist(clean_env / "no-such-folder", md5=md5)
    with pytest.raises(error, match=message):
        load_mnist(clean_env / "no-such-folder", md5=md5)


def test_md5_of_a_custom_data_set_is_checked(clean_env):
    spec = replace(TINY, md5={FILES[0]: 5})
    with pytest.raises(TypeError, match=r"the md5 of data set 'tiny-mnist'\["
                                        r"'train-images-idx3-ubyte.gz'\] must be a "
                                        r"32-hex-digit MD5 string; got 5 \(int\)"):
        fm.load_idx_dataset(spec, download=False)


def test_published_md5s_are_well_formed():
    for spec in (fm.FASHION_MNIST, fm.MNIST):
        assert fm.check_md5_map(spec.md5) is spec.md5 and sorted(spec.md5) == sorted(FILES)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_error_says_where_and_how(clean_env):
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(FileNotFoundError) as info:
        fm.load_idx_dataset(TINY, base_url=url, timeout=5)
    msg = str(info.value)
    assert "download failed" in msg and "CONVBLOCKS_DATA" in msg and "--data-dir" in msg
    assert str(fm.cache_dir("tiny-mnist")) in msg
    assert list(fm.cache_dir("tiny-mnist").glob("*")) == []


def test_download_disabled(clean_env, monkeypatch):
    monkeypatch.setenv("CONVBLOCKS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="download disabled"):
        fm.load_idx_dataset(TINY)


def test_offline_zero_still_downloads_and_uppercase_md5_is_accepted(clean_env, server,
                                                                     monkeypatch):
    """``CONVBLOCKS_OFFLINE=0`` (or empty) leaves downloads on; an MD5 written in upper
    case is the same checksum."""
    url, www = server
    make_idx_dataset(www)
    md5 = {f: md5_of_file(www / f).upper() for f in FILES}
    for value in ("0", ""):
        monkeypatch.setenv("CONVBLOCKS_OFFLINE", value)
        (x, _), _ = fm.load_idx_dataset(TINY, base_url=url, md5=md5)
        assert x.shape == (12, 28, 28, 1)
        for f in FILES:  # downloaded into the cache, byte for byte
            assert md5_of_file(fm.cache_dir("tiny-mnist") / f) == md5[f].lower()
            os.remove(fm.cache_dir("tiny-mnist") / f)


def test_fashion_message_names_apt_package(clean_env, monkeypatch):
    monkeypatch.setattr(fm, "search_dirs", lambda name, data_dir=None: [clean_env / "none"])
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(download=False)


REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not REAL.is_dir(), reason="Debian's dataset-fashion-mnist is not installed "
                    "(apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    (x, y), (xt, yt) = load_fashion_mnist(REAL)
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() == 1


def test_not_found_message_names_the_missing_file(clean_env):
    make_idx_dataset(clean_env / "d")
    os.remove(clean_env / "d" / FILES[2])
    (clean_env / "d" / FILES[2]).mkdir()             # a folder where the file should be
    with pytest.raises(FileNotFoundError) as info:
        fm.load_idx_dataset(TINY, clean_env / "d")
    msg = str(info.value)
    assert f"{clean_env / 'd'} (lacks t10k-images-idx3-ubyte.gz)" in msg
    assert f"{clean_env / 'd' / 'tiny-mnist'} (no such folder" in msg


def test_a_search_folder_that_cannot_be_examined_is_skipped(clean_env, monkeypatch):
    # Path.is_file() raises (not False) for EACCES or ENAMETOOLONG; that used to escape
    # as a bare OSError instead of moving on to the cache.
    monkeypatch.setenv("CONVBLOCKS_DATA", str(clean_env / ("a" * 300)))
    want = make_idx_dataset(fm.cache_dir("tiny-mnist"), seed=4)
    np.testing.assert_array_equal(fm.load_idx_dataset(TINY, download=False)[0][1], want[FILES[1]])


def test_bad_data_dir_and_dataset_name_are_named():
    from convblocks.datasets import load_dataset
    with pytest.raises(TypeError, match="data_dir must be a folder .*got 5 \\(int\\)"):
        load_mnist(5)
    with pytest.raises(ValueError, match="dataset must be one of .*got \\['mnist'\\]"):
        load_dataset(["mnist"])
