"""Pretrained files fetched on first use (src/pretrained/weights.py), against a server on 127.0.0.1.

Each test registers a :class:`WeightsFile` whose URL points at a local ``http.server`` (ephemeral
port) and counts the requests it sees: a first use downloads and checks the sha256, a second use
and a file placed by hand make no request, a wrong checksum, an HTTP error or a connection closed
early leave nothing in the folder, and forbidden downloads make no request. No test reaches the
real URLs (conftest.py sets ``GAMUT_OFFLINE=1``; these tests lift it for the loopback server only).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.pretrained.weights import (
    OFFLINE_ENV,
    WEIGHTS,
    MissingWeightsError,
    WeightsFile,
    allow_downloads,
    load_weights,
    weights_path,
)

CONF = Path(__file__).resolve().parents[1] / "src" / "conf"


def _state_dict_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(6.0).view(2, 3)}, buf)
    return buf.getvalue()


PAYLOAD = _state_dict_bytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Route:
    body: bytes
    status: int = 200
    close_early: bool = False  # announce the whole length, send half, hang up
    delay: float = 0.0


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append(self.path)
            route = state.routes.get(self.path, Route(b"no such file", status=404))
            time.sleep(route.delay)
            self.send_response(route.status)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body[: len(route.body) // 2] if route.close_early else route.body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args) -> None:  # quiet test output
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def online(monkeypatch) -> Iterator[None]:
    """Downloads allowed (the conftest's GAMUT_OFFLINE lifted; the process policy reset after)."""
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    allow_downloads(True)
    yield
    allow_downloads(True)


def register(monkeypatch, server: Server, name: str = "test_file", **spec) -> WeightsFile:
    """A WeightsFile ``name`` under :data:`WEIGHTS` whose URL is ``/<filename>`` on the test server."""
    filename = spec.pop("filename", "test-weights-1234abcd.pth")
    server.routes.setdefault(f"/{filename}", Route(spec.pop("body", PAYLOAD)))
    wf = WeightsFile(filename, f"{server.url}/{filename}", "the download tests", **spec)
    monkeypatch.setitem(WEIGHTS, name, wf)
    return wf


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` besides the lock files (temporary downloads included)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_first_use_downloads_and_verifies_then_reuses_the_file(server, online, monkeypatch, tmp_path, caplog):
    wf = register(monkeypatch, server, sha256=SHA)
    folder = tmp_path / "hub" / "checkpoints"  # created on first use
    with caplog.at_level("INFO", logger="gamut.weights"):
        state = load_weights("test_file", folder)
    assert torch.equal(state["w"], torch.arange(6.0).view(2, 3))
    assert (folder / wf.filename).read_bytes() == PAYLOAD
    assert leftovers(folder) == [wf.filename]  # no temporary file left beside it
    assert f"sha256 {SHA} verified" in caplog.text
    assert weights_path("test_file", folder) == folder / wf.filename
    load_weights("test_file", folder)
    assert server.requests == [f"/{wf.filename}"]  # one download, then the cache


def test_a_torch_hub_hash_prefix_is_a_checksum(server, online, monkeypatch, tmp_path):
    register(monkeypatch, server, sha256=SHA[:8])
    assert weights_path("test_file", tmp_path).read_bytes() == PAYLOAD
    register(monkeypatch, server, "other", filename="other.pth", sha256=("0" if SHA[0] != "0" else "1") + SHA[1:8])
    with pytest.raises(MissingWeightsError, match="expected"):
        weights_path("other", tmp_path)


def test_a_wrong_checksum_names_url_and_path_and_keeps_nothing(server, online, monkeypatch, tmp_path):
    wf = register(monkeypatch, server, sha256="0" * 64)
    with pytest.raises(MissingWeightsError) as e:
        weights_path("test_file", tmp_path)
    msg = str(e.value)
    assert wf.url in msg and str(tmp_path / wf.filename) in msg and "paths.weights_dir" in msg
    assert f"sha256 {SHA}" in msg and "\n" not in msg
    assert leftovers(tmp_path) == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("how", ["config", "env"])
def test_forbidden_downloads_raise_without_a_request(server, online, monkeypatch, tmp_path, how):
    wf = register(monkeypatch, server, sha256=SHA)
    if how == "config":
        allow_downloads(False)
        setting = "paths.download_weights=false"
    else:
        monkeypatch.setenv(OFFLINE_ENV, "1")
        setting = f"{OFFLINE_ENV}=1"
    with pytest.raises(MissingWeightsError) as e:
        weights_path("test_file", tmp_path)
    msg = str(e.value)
    assert f"{wf.filename} not found" in msg and setting in msg
    assert wf.url in msg and str(tmp_path / wf.filename) in msg and "\n" not in msg
    assert server.requests == [] and leftovers(tmp_path) == []


def test_the_environment_forbids_even_when_the_config_allows(server, online, monkeypatch, tmp_path):
    register(monkeypatch, server, sha256=SHA)
    monkeypatch.setenv(OFFLINE_ENV, "true")
    allow_downloads(True)
    with pytest.raises(MissingWeightsError, match=f"{OFFLINE_ENV}=true"):
        weights_path("test_file", tmp_path)
    assert server.requests == []
    monkeypatch.setenv(OFFLINE_ENV, "0")  # anything but 1/true/yes/on allows
    weights_path("test_file", tmp_path)
    assert len(server.requests) == 1


def test_a_tool_names_its_own_key(monkeypatch, tmp_path):
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    try:
        allow_downloads(False, "download_weights")
        with pytest.raises(MissingWeightsError, match=r"downloads are off \(download_weights=false\)"):
            weights_path("vgg16", tmp_path)
        with pytest.raises(ValueError, match="download_weights='no': expected true or false"):
            allow_downloads("no", "download_weights")  # type: ignore[arg-type]
    finally:
        allow_downloads(True)


def test_a_file_placed_by_hand_is_used_without_a_request(server, online, monkeypatch, tmp_path):
    wf = register(monkeypatch, server, sha256="0" * 64)  # not even hashed: torch hub's cache rule
    (tmp_path / wf.filename).write_bytes(PAYLOAD)
    assert weights_path("test_file", tmp_path) == tmp_path / wf.filename
    assert load_weights("test_file", tmp_path)["w"].shape == (2, 3)
    assert server.requests == []


@pytest.mark.parametrize("failure", ["404", "500", "closed early"])
def test_a_failed_download_leaves_no_partial_file(server, online, monkeypatch, tmp_path, failure):
    filename = "broken.pth"
    server.routes[f"/{filename}"] = {
        "404": Route(b"no such file", status=404),
        "500": Route(b"oops", status=500),
        "closed early": Route(PAYLOAD, close_early=True),
    }[failure]
    wf = register(monkeypatch, server, filename=filename, sha256=SHA)
    with pytest.raises(MissingWeightsError) as e:
        weights_path("test_file", tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"could not download {filename} from {wf.url}")
    assert str(tmp_path / filename) in msg and "paths.weights_dir" in msg and "\n" not in msg
    expected = {"404": "HTTP 404", "500": "HTTP 500", "closed early": f"{len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"}
    assert expected[failure] in msg
    assert leftovers(tmp_path) == []


def test_an_unreachable_server_is_one_line(online, monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/gone.pth"
    monkeypatch.setitem(WEIGHTS, "test_file", WeightsFile("gone.pth", url, "tests", sha256=SHA))
    with pytest.raises(MissingWeightsError, match=rf"could not download gone.pth from {re.escape(url)} \(") as e:
        weights_path("test_file", tmp_path)
    assert str(tmp_path / "gone.pth") in str(e.value) and leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_one_line(server, online, monkeypatch, tmp_path):
    wf = register(monkeypatch, server, sha256=SHA)
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(MissingWeightsError, match=f"cannot write {wf.filename} into") as e:
        weights_path("test_file", tmp_path / "file" / "checkpoints")
    assert wf.url in str(e.value) and "\n" not in str(e.value) and server.requests == []


def test_without_a_published_checksum_the_format_is_checked_and_the_digest_logged(
    server, online, monkeypatch, tmp_path, caplog
):
    with warnings.catch_warnings():  # torch marks TorchScript deprecated
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    script = buf.getvalue()
    server.routes["/net.pt"] = Route(script)
    server.routes["/page.pt"] = Route(b"<html>rate limited</html>")
    register(monkeypatch, server, "net", filename="net.pt", file_format="torchscript")
    page = register(monkeypatch, server, "page", filename="page.pt", file_format="torchscript")
    with caplog.at_level("INFO", logger="gamut.weights"):
        assert weights_path("net", tmp_path).read_bytes() == script
    assert f"sha256 {hashlib.sha256(script).hexdigest()} (no published checksum" in caplog.text
    with pytest.raises(MissingWeightsError, match="is not a torchscript file") as e:
        weights_path("page", tmp_path)
    assert page.url in str(e.value) and "\n" not in str(e.value)
    register(monkeypatch, server, "plain", filename="plain.pth", body=b"<html>", sha256=None)
    with pytest.raises(MissingWeightsError, match="is not a state_dict file"):
        weights_path("plain", tmp_path)
    assert leftovers(tmp_path) == ["net.pt"]


def test_processes_asking_at_once_download_once(server, online, monkeypatch, tmp_path):
    wf = register(monkeypatch, server, sha256=SHA)
    server.routes[f"/{wf.filename}"].delay = 0.3
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            weights_path("test_file", tmp_path)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(server.requests) == 1
    assert (tmp_path / wf.filename).read_bytes() == PAYLOAD


def test_known_files_carry_checksums_that_agree_with_their_names():
    """Full sha256 digests where published; torch hub's file-name prefix agrees with them."""
    for name, wf in WEIGHTS.items():
        if wf.sha256 is None:
            continue
        assert re.fullmatch(r"[0-9a-f]{8,64}", wf.sha256), name
        in_name = re.search(r"-([0-9a-f]{8,})\.", wf.filename)  # torch.hub's HASH_REGEX convention
        if in_name:
            assert wf.sha256.startswith(in_name.group(1)), name
    assert len(WEIGHTS["vgg16"].sha256 or "") == 64 and len(WEIGHTS["inception"].sha256 or "") == 64
    nvidia = WEIGHTS["vgg16_nvidia"]  # NVIDIA publishes no digest: checked as TorchScript instead
    assert nvidia.sha256 is None and nvidia.file_format == "torchscript"


def test_downloads_are_on_by_default_in_the_config():
    paths = OmegaConf.load(CONF / "paths" / "default.yaml")
    assert paths.download_weights is True
    assert "hub/checkpoints" in str(paths.weights_dir)  # torch hub's cache: where torch itself downloads
