"""MNIST: the shipped file, the cache, and downloads from a local HTTP server (127.0.0.1 only)."""

import hashlib
import http.server
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import Data
from mlpcli.data import load_dataset, mnist
from mlpcli.errors import UserError
from tests.helpers import ROOT

README_SHA256 = "6ff3272174ad1dcb2ce270847ad63698633925ed0249e1e856d6fd92a3fbd58e"


def fake_mnist(n_train: int = 40, n_test: int = 10) -> bytes:
    """An archive shaped like Keras' mnist.npz: uint8 images (n, 28, 28), labels 0..9."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=(np.arange(n_train) % 10).astype(np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=(np.arange(n_test) % 10).astype(np.uint8),
    )
    return buffer.getvalue()


class Server:
    """Serves one body at /mnist.npz; `cut` sends only that many bytes of it, then hangs up."""

    def __init__(self, body: bytes, cut: int | None = None) -> None:
        self.body, self.cut, self.requests = body, cut, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if self.path != "/mnist.npz":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body[: server.cut])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist.npz"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Iterator[Path]:
    """An empty user cache, and no clone copy to find: the download path is taken."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLPCLI_CACHE_DIR", str(folder))
    monkeypatch.setattr(mnist, "search_paths", lambda: [folder / mnist.FILE])
    yield folder


def serve(monkeypatch, body: bytes, cut: int | None = None, sha: str | None = None) -> Server:
    server = Server(body, cut)
    monkeypatch.setattr(mnist, "MNIST_URL", server.url)
    monkeypatch.setattr(mnist, "MNIST_SHA256", sha or hashlib.sha256(body).hexdigest())
    return server


def test_the_shipped_file_is_real_mnist():
    path = ROOT / "datasets" / "mnist.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == README_SHA256
    train, test = mnist.load_mnist(path)
    assert train.X.shape == (60_000, 784) and test.X.shape == (10_000, 784)
    assert train.y is not None and np.bincount(train.y).tolist()[:2] == [5923, 6742]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MLPCLI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mnist.cache_dir() == tmp_path / "mlpcli"
    monkeypatch.setenv("MLPCLI_CACHE_DIR", str(tmp_path / "x"))
    assert mnist.cache_dir() == tmp_path / "x"


def test_download_then_load_from_the_cache(monkeypatch, cache):
    body = fake_mnist()
    seen: list[tuple[int, int | None]] = []
    with serve(monkeypatch, body) as server:
        cfg = Data(source="mnist", split={"train": 0.75, "val": 0.25, "test": 0.0})
        dataset = load_dataset(cfg, 0, progress=lambda done, total: seen.append((done, total)))
        again = load_dataset(cfg, 0)
        assert server.requests == 1  # the second load found the cached file
    assert (cache / "mnist.npz").read_bytes() == body
    assert [p.name for p in cache.iterdir()] == ["mnist.npz"]  # no temporary file left
    assert seen[0] == (0, len(body)) and seen[-1] == (len(body), len(body))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert {name: len(part) for name, part in dataset.parts.items()} == {
        "train": 30,
        "val": 10,
        "test": 10,  # the official test part, whatever split.test says
    }
    assert dataset.class_names == [str(d) for d in range(10)] and dataset.n_features == 784
    assert np.array_equal(dataset.parts["val"].X, again.parts["val"].X)


def test_wrong_checksum_is_refused_and_nothing_is_kept(monkeypatch, cache):
    with (
        serve(monkeypatch, fake_mnist(), sha="0" * 64),
        pytest.raises(UserError, match=r"sha256 of the download is [0-9a-f]{64}, expected 0{64}"),
    ):
        mnist.mnist_path()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_interrupted_download_is_refused_and_nothing_is_kept(monkeypatch, cache):
    body = fake_mnist()
    with (
        serve(monkeypatch, body, cut=1000),
        pytest.raises(UserError, match=rf"download interrupted after 1,000 of {len(body):,} bytes"),
    ):
        mnist.mnist_path()
    assert list(cache.iterdir()) == []


def test_unreachable_server_is_a_clear_error(monkeypatch, cache):
    with serve(monkeypatch, b"") as server:
        url = server.url.replace("mnist.npz", "missing.npz")
    monkeypatch.setattr(mnist, "MNIST_URL", url)  # the server is gone: connection refused
    with pytest.raises(
        UserError, match=r"cannot download http://127\.0\.0\.1:\d+/missing.npz"
    ) as info:
        mnist.mnist_path()
    assert info.value.hint is not None and str(cache / "mnist.npz") in info.value.hint


def test_http_error_is_a_clear_error(monkeypatch, cache):
    with serve(monkeypatch, fake_mnist()) as server:
        monkeypatch.setattr(mnist, "MNIST_URL", re.sub(r"mnist\.npz.*", "nope.npz", server.url))
        with pytest.raises(UserError, match=r"cannot download .*nope.npz: Not Found"):
            mnist.mnist_path()


def test_a_broken_cached_file_says_what_to_do(cache):
    cache.mkdir()
    (cache / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"not a usable MNIST archive") as info:
        load_dataset(Data(source="mnist"), 0)
    assert info.value.hint is not None and "delete it" in info.value.hint


def test_cli_download_shows_progress(monkeypatch, cache, cli):
    body = fake_mnist()
    with serve(monkeypatch, body):
        result = cli("datasets", "--download", "mnist")
    assert result.exit_code == 0, result.output
    assert f"mnist: {cache / 'mnist.npz'}" in result.output.replace("\n", "")
    assert "downloading mnist" in result.output and "100%" in result.output
    assert cli("datasets", "--download", "iris").exit_code == 2
