"""The one place that finds a pretrained file in ``paths.weights_dir``, fetches it on first use, and
loads it safely.

Files keep their upstream names, so a torch hub cache that already holds them works as is (the
default ``paths.weights_dir`` *is* torch hub's ``checkpoints`` folder). A file that is absent is
downloaded from its URL, as torch hub (``torch.hub.load_state_dict_from_url``), torch-fidelity and
NVIDIA's ``dnnlib.util.open_url`` do: into a temporary file in the same folder, its sha256 checked
against the published digest, then renamed into place, so an interrupted or failed download never
leaves a file under the final name. Concurrent processes (DDP ranks) take turns on a lock file and
download once. A file placed by hand is used as it is, without hashing (as torch hub uses its cache).

Checksums: :attr:`WeightsFile.sha256` holds the full digest where one is known (torchvision's and
torch-fidelity's file names carry its first 8 hex digits, torch hub's convention, and the full
digest agrees with them). NVIDIA publishes none for ``vgg16.pt``: ``sha256=None`` means the download
is verified by its format only (it must open as TorchScript, :attr:`WeightsFile.file_format`, before
it is kept) and its digest is logged, so a run's log records which file was fetched.

Downloads can be forbidden: :func:`allow_downloads` sets the process-wide policy (``src.train`` and
``src.eval`` set it from ``paths.download_weights``, the tools from their ``download_weights`` key),
and ``GAMUT_OFFLINE=1`` in the environment forbids them whatever the config says (and reaches
DDP ranks and sweep jobs, which inherit the environment). Every failure (offline, HTTP error,
checksum mismatch, downloads forbidden) is one :class:`MissingWeightsError` line naming the URL and
the exact path to place the file at by hand.

Files are read with ``torch.load(weights_only=True)``: a state dict of tensors, never pickled code.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

log = logging.getLogger("gamut.weights")

# Where the tools look for weight files unless told (``weights_dir=``): torch hub's checkpoints folder,
# where torchvision and torch.hub put downloads, honouring ``TORCH_HOME``.
DEFAULT_WEIGHTS_DIR = os.path.join(
    os.environ.get("TORCH_HOME", os.path.expanduser("~/.cache/torch")), "hub", "checkpoints"
)
#: Set to 1 (true, yes, on) to forbid every download, whatever ``paths.download_weights`` says.
OFFLINE_ENV = "GAMUT_OFFLINE"
_TRUE = ("1", "true", "yes", "on")
# Seconds a stalled connection may stay silent before the download counts as failed.
_TIMEOUT = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained file: its upstream name, where to get it, what it is for, and its checksum.

    ``sha256``: the file's hex digest, or a prefix of it (torch hub's 8-digit file-name hashes); a
    download whose digest does not start with it is deleted and refused. ``None``: no published
    digest; the download is checked by loading it as ``file_format`` (``state_dict``: a
    ``torch.load(weights_only=True)`` dict; ``torchscript``: ``torch.jit.load``) before it is kept,
    and its digest is logged.
    """

    filename: str
    url: str
    used_for: str
    sha256: str | None = None
    file_format: str = "state_dict"


WEIGHTS: dict[str, WeightsFile] = {
    "inception": WeightsFile(
        "weights-inception-2015-12-05-6726825d.pth",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        "FID and KID (torch-fidelity's port of the TF Inception-v3 graph NVIDIA uses)",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    ),
    "vgg16": WeightsFile(
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "precision/recall under the *_torchvision names, ChromaGAN's VGG-16 and the projector's LPIPS; "
        "torchvision's ImageNet weights",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    ),
    "vgg16_nvidia": WeightsFile(
        "vgg16.pt",
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
        "precision/recall (pr50k3_full, ...) and PPL with NVIDIA's own VGG-16 (a TorchScript archive)",
        file_format="torchscript",  # NVIDIA publishes no checksum: the download must load as TorchScript
    ),
    "dinov2_vitl14": WeightsFile(
        "dinov2_vitl14_pretrain.pth",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
        "FD-DINOv2 (Stein et al. 2023): DINOv2 ViT-L/14",
        sha256="d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428",
    ),
}


class MissingWeightsError(FileNotFoundError):
    """A pretrained file is not where the config says and could not be fetched; the message says how
    to fix it."""


# The config's word (allow_downloads) and the key it came from; the environment may still forbid.
_policy: tuple[bool, str] = (True, "paths.download_weights")


def allow_downloads(allowed: bool, key: str = "paths.download_weights") -> None:
    """Set whether missing files may be downloaded in this process; ``key``: the setting it came from
    (named in the error when a download is refused).

    The entry points call it once from their config; ``GAMUT_OFFLINE=1`` forbids downloads anyway.
    """
    global _policy
    if not isinstance(allowed, bool):
        raise ValueError(f"{key}={allowed!r}: expected true or false")
    _policy = (allowed, key)


def downloads_forbidden_by() -> str | None:
    """What forbids downloads now (the setting to change, for messages), or None when they are allowed."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE:
        return f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]}"
    allowed, key = _policy
    return None if allowed else f"{key}=false"


def _where(path: Path, weights_dir: str | Path) -> str:
    return f"{path} (paths.weights_dir={str(weights_dir)!r}, or TORCH_HOME)"


def weights_path(name: str, weights_dir: str | Path) -> Path:
    """Path of pretrained file ``name`` (a key of :data:`WEIGHTS`) in ``weights_dir``; fetched when absent.

    Raises :class:`MissingWeightsError` when the file is absent and cannot be fetched.
    """
    if name not in WEIGHTS:
        raise KeyError(f"unknown pretrained file {name!r}; known: {', '.join(WEIGHTS)}")
    spec = WEIGHTS[name]
    path = Path(weights_dir).expanduser() / spec.filename
    if path.is_file():
        return path
    forbidden = downloads_forbidden_by()
    if forbidden is not None:
        raise MissingWeightsError(
            f"{spec.filename} not found in paths.weights_dir={str(weights_dir)!r} (needed for {spec.used_for}) "
            f"and downloads are off ({forbidden}): download {spec.url} by hand to {path}, or set "
            "paths.weights_dir (or TORCH_HOME) to the folder that holds it."
        )
    _fetch(spec, path, weights_dir)
    return path


def _fetch(spec: WeightsFile, path: Path, weights_dir: str | Path) -> None:
    """Download ``spec`` to ``path`` once, even with several processes asking at the same time."""
    hint = f"download it by hand to {_where(path, weights_dir)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.parent / f".{spec.filename}.lock")):
            if path.is_file():  # another process fetched it while this one waited
                return
            _download(spec, path, hint)
    except MissingWeightsError:
        raise
    except OSError as e:  # a folder that cannot be created or written (read-only cache, a file in the way)
        raise MissingWeightsError(
            f"cannot write {spec.filename} into {path.parent} ({type(e).__name__}: {e}); {hint} from {spec.url}"
        ) from None


def _download(spec: WeightsFile, path: Path, hint: str) -> None:
    """Stream ``spec.url`` into a temporary file beside ``path``, check it, then rename it to ``path``."""
    log.info("downloading %s from %s to %s (first use)", spec.filename, spec.url, path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=_TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
            if expected is not None and received != expected:
                raise OSError(f"connection closed after {received} of {expected} bytes")
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError/HTTPError, timeouts, full disk
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            code = f"HTTP {e.code}: " if isinstance(e, urllib.error.HTTPError) else ""
            raise MissingWeightsError(
                f"could not download {spec.filename} from {spec.url} ({code}{reason}); {hint}"
            ) from None
        actual = digest.hexdigest()
        if spec.sha256 is not None and not actual.startswith(spec.sha256.lower()):
            raise MissingWeightsError(
                f"{spec.filename} downloaded from {spec.url} has sha256 {actual}, expected {spec.sha256}; "
                f"the download was deleted: {hint} after checking its sha256"
            )
        if spec.sha256 is None:
            _check_format(spec, tmp, hint)
        tmp.chmod(0o644)  # mkstemp's 0600 would keep a shared cache's file from its other users
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed, refused or interrupted download leaves nothing behind
    if spec.sha256 is None:
        log.info("%s: %d bytes, sha256 %s (no published checksum; checked by loading it)", path, received, actual)
    else:
        log.info("%s: %d bytes, sha256 %s verified", path, received, actual)


def _check_format(spec: WeightsFile, tmp: Path, hint: str) -> None:
    """Refuse a download with no published checksum unless it loads as ``spec.file_format``."""
    try:
        if spec.file_format == "torchscript":
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; NVIDIA ships it
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.load(str(tmp), map_location="cpu")
        elif not isinstance(torch.load(tmp, map_location="cpu", weights_only=True), dict):
            raise ValueError("not a state dict")
    except Exception as e:  # an HTML page served with status 200, a truncated file, pickled code
        raise MissingWeightsError(
            f"{spec.filename} downloaded from {spec.url} is not a {spec.file_format} file "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); the download was deleted: {hint}"
        ) from None


def load_weights(name: str, weights_dir: str | Path) -> dict[str, torch.Tensor]:
    """The state dict stored in pretrained file ``name``, on the CPU (``weights_only=True``); fetched
    on first use (:func:`weights_path`)."""
    path = weights_path(name, weights_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated download, HTML error page, pickled code
        raise MissingWeightsError(
            f"{path} is not a readable state dict ({type(e).__name__}: {e}); download it again from {WEIGHTS[name].url}"
        ) from None
    if not isinstance(state, dict):
        raise MissingWeightsError(
            f"{path} holds a {type(state).__name__}, not a state dict; download it again from {WEIGHTS[name].url}"
        )
    return state
