"""Sources: the image files of a folder or a stylegan2-ada ``dataset_tool.py`` zip, listed and read as bytes.

Sources list files deterministically (sorted relative POSIX paths) and return raw bytes; a zip is
opened lazily in each process, so DataLoader workers never share a zip handle across ``fork``.
Labels (``use_labels``) come from a ``dataset.json`` in the zip or folder, else from a folder's
top-level subfolders, one class each in sorted name order (``src/datamodules/labels.py``).
:func:`archive_name` is the naming ``dataset_tool.py`` uses inside the zips it writes.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from src.datamodules.labels import parse_labels, subfolder_labels
from src.datamodules.readers.decoding import IMAGE_EXTENSIONS, is_image_name

__all__ = [
    "FFHQ_SUBFOLDERS",
    "LABEL_FILE",
    "DataRootNotFoundError",
    "FolderSource",
    "ZipSource",
    "open_source",
    "archive_name",
]

# The official FFHQ download's image trees, in order of preference (NVlabs/ffhq-dataset).
FFHQ_SUBFOLDERS: tuple[str, ...] = ("images1024x1024", "thumbnails128x128")
LABEL_FILE = "dataset.json"  # dataset_tool's label file, at the top of a zip or folder


class DataRootNotFoundError(FileNotFoundError, ValueError):
    """``data.root`` (or a path a layout needs) does not exist. Also a ``ValueError``, so start-up
    treats it like any other bad config value (one line naming the path)."""


def archive_name(index: int) -> str:
    """The name ``dataset_tool.py`` gives image ``index`` in its zips: ``00000/img00000000.png``
    (1000 images per folder)."""
    s = f"{index:08d}"
    return f"{s[:5]}/img{s}.png"


class FolderSource:
    """Every image file under ``root`` (recursive, following links), sorted by relative POSIX path.

    Hidden files and folders (``.name``) are skipped; files without an image extension are not
    listed and are counted in :attr:`ignored` (a ``dataset.json`` at the top is not counted).
    Labels are read on first use: :attr:`labels` (``dataset.json``) and :meth:`class_labels`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataRootNotFoundError(f"data.root: {self.root} does not exist")
        if not self.root.is_dir():
            raise ValueError(f"data.root: {self.root} is neither a folder nor a .zip file")
        names: list[str] = []
        ignored = 0
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for f in filenames:
                if is_image_name(f):
                    names.append(f if rel == "." else f"{rel}/{f}")
                elif not (rel == "." and f == LABEL_FILE):
                    ignored += 1
        if not names:
            raise ValueError(
                f"data.root: no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.root}"
                + (f" ({ignored} other files ignored)" if ignored else "")
            )
        self._names = sorted(names)
        self.ignored = ignored
        self._json_labels: list[int] | None = None
        self._json_read = False
        self.class_names: list[str] | None = None  # the class subfolders, once class_labels() read them

    @property
    def label_file(self) -> Path | None:
        """``dataset.json`` at the top of the folder, or None when there is none."""
        path = self.root / LABEL_FILE
        return path if path.is_file() else None

    @property
    def labels(self) -> list[int] | None:
        """The labels of ``dataset.json`` at the top of the folder, per listed image, read on first use;
        None without that file or for ``"labels": null`` (as :attr:`ZipSource.labels`)."""
        if not self._json_read:
            meta = self.label_file
            self._json_labels = None if meta is None else parse_labels(meta.read_bytes(), self._names, str(meta))
            self._json_read = True
        return self._json_labels

    def class_labels(self) -> list[int] | None:
        """The labels ``use_labels`` reads: :attr:`labels` when the folder has a ``dataset.json`` (it wins),
        else one class per top-level subfolder in sorted name order (:func:`subfolder_labels`, which
        raises naming an image directly in the folder); the latter also sets :attr:`class_names`."""
        if self.label_file is not None:
            return self.labels
        labels, self.class_names = subfolder_labels(self._names, str(self.root))
        return labels

    def __len__(self) -> int:
        return len(self._names)

    def name(self, i: int) -> str:
        return self._names[i]

    def path(self, i: int) -> Path:
        return self.root / self._names[i]

    def read(self, i: int) -> bytes:
        return self.path(i).read_bytes()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, images={len(self)}, ignored={self.ignored})"


class ZipSource:
    """The images in a zip (stylegan2-ada ``dataset_tool.py`` output or any zip of images).

    Labels come from ``dataset.json`` (``{"labels": [[fname, int], ...]}`` or ``"labels": null``)
    when present; every listed image must then have an integer label. The zip is opened lazily in
    each process (and reopened after ``fork``/unpickling), never shared between workers.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataRootNotFoundError(f"data.root: {self.root} does not exist")
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None
        try:
            with zipfile.ZipFile(self.root) as z:
                infos = [i for i in z.infolist() if not i.is_dir()]
                meta = z.read(LABEL_FILE) if LABEL_FILE in z.namelist() else None
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"data.root: {self.root} is not a readable zip file ({e})") from e
        names, ignored = [], 0
        for info in infos:
            if info.filename.startswith("__MACOSX/") or not is_image_name(info.filename):
                ignored += 1 if info.filename not in (LABEL_FILE, "manifest.json") else 0
            else:
                names.append(info.filename)
        if not names:
            raise ValueError(f"data.root: no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.root}")
        self._names = sorted(names)
        self.ignored = ignored
        self.labels = self._parse_labels(meta)
        self.class_names: list[str] | None = None  # a zip's labels come from dataset.json only

    def class_labels(self) -> list[int] | None:
        """The labels ``use_labels`` reads: a zip's come from its ``dataset.json`` only (:attr:`labels`)."""
        return self.labels

    def _parse_labels(self, meta: bytes | None) -> list[int] | None:
        """The zip's ``dataset.json`` labels per listed image (:func:`parse_labels`); None without them."""
        return None if meta is None else parse_labels(meta, self._names, f"{self.root}/{LABEL_FILE}")

    def __len__(self) -> int:
        return len(self._names)

    def name(self, i: int) -> str:
        return self._names[i]

    def _file(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.root)  # a forked copy's handle is abandoned, not closed
            self._pid = os.getpid()
        return self._zip

    def read(self, i: int) -> bytes:
        return self._file().read(self._names[i])

    def close(self) -> None:
        if self._zip is not None and self._pid == os.getpid():
            self._zip.close()
        self._zip = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, images={len(self)}, labels={self.labels is not None})"


def _has_images(folder: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image_name(f) for f in filenames):
            return True
    return False


def open_source(root: str | Path, layout: str | None = None) -> FolderSource | ZipSource:
    """``root`` as a source: a ``.zip`` file -> :class:`ZipSource`, a folder -> :class:`FolderSource`.

    ``layout="ffhq"``: a folder holding ``images1024x1024`` (preferred) or ``thumbnails128x128`` is
    read from that subfolder; a folder with neither and no images raises naming the path.
    """
    path = Path(root).expanduser()
    if not path.exists():
        raise DataRootNotFoundError(f"data.root: {path} does not exist")
    if layout not in (None, "ffhq"):
        raise ValueError(f"layout={layout!r}: expected null or 'ffhq'")
    if path.is_file():
        if zipfile.is_zipfile(path):
            return ZipSource(path)
        raise ValueError(f"data.root: {path} is a file but not a zip; point data.root at a folder or a .zip")
    if layout == "ffhq":
        for sub in FFHQ_SUBFOLDERS:
            if (path / sub).is_dir():
                return FolderSource(path / sub)
        if not _has_images(path):
            raise ValueError(
                f"data.root: {path} is not an FFHQ folder: it holds no images and no "
                f"{' or '.join(FFHQ_SUBFOLDERS)} subfolder (or use a dataset_tool .zip)"
            )
    return FolderSource(path)
