"""download() against a local server that misbehaves, and the loader's argument checks."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import replace

import pytest

from convblocks.datasets import DownloadError, download
from convblocks.datasets import fashion_mnist as fm

TINY = replace(fm.MNIST, name="tiny-mnist", url="http://127.0.0.1:9/never-used/")
DATA = bytes(range(256)) * 40
MD5 = hashlib.md5(DATA).hexdigest()


class _Bad(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.close_connection = True
        if self.path.endswith("/ok"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)
        elif "/short" in self.path:  # promises all of DATA, sends 1000 bytes, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA[:1000])
        elif "/chunked" in self.path:  # announces a 5000-byte chunk, sends 100
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"1388\r\n" + DATA[:100])
        else:  # not HTTP at all
            self.wfile.write(b"SSH-2.0-OpenSSH\r\n\r\n")


@pytest.fixture
def bad_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Bad)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ok_server_sanity(bad_server, tmp_path):
    download(bad_server + "/ok", tmp_path / "f", md5=MD5)
    assert (tmp_path / "f").read_bytes() == DATA


@pytest.mark.parametrize("md5", [MD5, None])
def test_connection_closed_before_content_length(bad_server, tmp_path, md5):
    # http.client hands back b"" at the early close: without the length check a file
    # without a checksum was kept cut short, one with a checksum blamed on the server.
    with pytest.raises(DownloadError, match="closed after 1000 of 10240 bytes"):
        download(bad_server + "/short", tmp_path / "f", md5=md5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path, what", [("/chunked", "IncompleteRead"),
                                        ("/ssh", "BadStatusLine")])
def test_broken_http_is_a_download_error(bad_server, tmp_path, path, what):
    with pytest.raises(DownloadError, match=f"could not download .*{path}: {what}"):
        download(bad_server + path, tmp_path / "f", md5=None)
    assert list(tmp_path.iterdir()) == []


def test_loader_turns_a_cut_transfer_into_how_to_get_the_data(clean_env, bad_server):
    with pytest.raises(FileNotFoundError, match="(?s)download failed.*IncompleteRead.*"
                                                "CONVBLOCKS_DATA"):
        fm.load_idx_dataset(TINY, base_url=bad_server + "/chunked/", timeout=5)
    assert not fm.cache_dir("tiny-mnist").exists() or \
        list(fm.cache_dir("tiny-mnist").iterdir()) == []


def test_cache_folder_that_cannot_be_written_is_explained(clean_env, monkeypatch, bad_server):
    blocker = clean_env / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(FileNotFoundError, match="cache folder .*not-a-folder.* cannot be "
                                                "written.*XDG_CACHE_HOME"):
        fm.load_idx_dataset(TINY, base_url=bad_server + "/ok/", timeout=5)
    assert blocker.read_text() == "a file where the cache folder should be"


def test_download_flag_is_not_read_by_truthiness(clean_env):
    with pytest.raises(TypeError, match="download must be True or False; got 'no'"):
        fm.load_idx_dataset(TINY, download="no")


@pytest.mark.parametrize("timeout, error", [(-1, ValueError), (0, ValueError),
                                            (float("nan"), ValueError), ("5", TypeError),
                                            (True, TypeError)])
def test_timeout_is_checked(clean_env, tmp_path, timeout, error):
    with pytest.raises(error, match="timeout must be a number of seconds"):
        fm.load_idx_dataset(TINY, timeout=timeout)
    with pytest.raises(error, match="timeout must be a number of seconds"):
        download("http://127.0.0.1:9/x", tmp_path / "x", md5=None, timeout=timeout)


@pytest.mark.parametrize("md5, error, message", [
    (123, TypeError, r"md5 must be a 32-hex-digit MD5 string or None; got 123 \(int\)"),
    (MD5.encode(), TypeError, r"md5 must be a 32-hex-digit MD5 string or None; got "
                              r"b'[0-9a-f]{32}' \(bytes\)"),
    ("abc", ValueError, r"md5 must be an MD5 digest of 32 hex digits \(0-9, a-f\); got "
                        r"'abc' \(3 characters\)"),
    (MD5[:-1] + "g", ValueError, r"md5 must be an MD5 digest of 32 hex digits .*"
                                 r"\(32 characters\)"),
    (MD5 + "\n", ValueError, r"md5 must be an MD5 digest of 32 hex digits .*"
                             r"\(33 characters\)"),
])
def test_md5_is_checked_before_anything_is_fetched(bad_server, tmp_path, md5, error, message):
    # It used to be found out after the download: a str as a "checksum mismatch", any
    # other type as an AttributeError from md5.lower().
    with pytest.raises(error, match=message):
        download(bad_server + "/ok", tmp_path / "f", md5=md5)
    with pytest.raises(error, match=message):   # no server at all: nothing is contacted
        download("http://127.0.0.1:9/x", tmp_path / "g", md5=md5)
    assert list(tmp_path.iterdir()) == []


def test_md5_in_either_case_is_accepted(bad_server, tmp_path):
    download(bad_server + "/ok", tmp_path / "f", md5=MD5.upper())
    assert (tmp_path / "f").read_bytes() == DATA
