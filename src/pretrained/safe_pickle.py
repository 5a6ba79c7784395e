"""Read NVIDIA StyleGAN2 network pickles without running any of their code.

stylegan2-ada-pytorch and stylegan3 save networks with their ``torch_utils.persistence`` module:
every network object is pickled as a call ``_reconstruct_persistent_obj(meta)``, where ``meta``
holds the class name, the *source code* of the module that defines it and the object's
``__dict__`` (its ``_parameters``, ``_buffers``, ``_modules``, plain attributes and the
constructor arguments). Loading such a file with :mod:`pickle` executes that source; loading a
stranger's file that way runs whatever it contains.

:class:`RestrictedUnpickler` resolves only an explicit allow-list of globals. NVIDIA's record
constructor is replaced by :class:`PersistentRecord`, which keeps the class name and state and
never looks at the embedded source; tensors are rebuilt by torch's own weights-only loader.
Anything else the stream asks for (``os.system``, ``builtins.eval``, a foreign class, a
persistent id) stops the load with :class:`UnsafePickleError` naming it, before it is called.

Besides tensors, NVIDIA's StyleGAN3 networks store small numpy arrays as attributes (a layer's
``in_size``/``out_size``, the input's ``size``). Those are rebuilt by :class:`NumericArray` from
their raw bytes, for numeric dtypes only (an object array, whose items would be arbitrary
objects, is refused).
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something outside the allow-list; nothing it names was run."""


class PersistentRecord:
    """Stand-in for an object NVIDIA's ``persistence`` module would rebuild from its source.

    ``class_name`` is the original class (``Generator``, ``SynthesisLayer``, ...), ``state`` the
    object's ``__dict__`` as stored. The embedded module source is dropped unread.
    """

    def __init__(self, meta: Any) -> None:
        if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
            raise UnsafePickleError(
                "a persistent-object record without the expected metadata (type='class', class_name, state)"
            )
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state: dict = dict(meta["state"])

    # nn.Module's __dict__ layout: _parameters / _buffers / _modules plus plain attributes.
    @property
    def children(self) -> dict[str, PersistentRecord]:
        return {k: v for k, v in self.state.get("_modules", {}).items() if v is not None}

    def attr(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this record and its children, by dotted name."""
        out: dict[str, torch.Tensor] = {}
        skip = set(self.state.get("_non_persistent_buffers_set", ()))
        for group in ("_parameters", "_buffers"):
            for k, v in self.state.get(group, {}).items():
                if v is not None and k not in skip:
                    out[prefix + k] = v
        for k, child in self.children.items():
            if not isinstance(child, PersistentRecord):
                raise UnsafePickleError(
                    f"sub-module {prefix + k!r} is a {type(child).__name__}, not a persistent-object record"
                )
            out.update(child.tensors(prefix + k + "."))
        return out

    def find(self, class_name: str) -> list[str]:
        """Dotted paths of every record (self included) whose class is ``class_name``."""
        found = [""] if self.class_name == class_name else []
        for k, child in self.children.items():
            found += [k if not p else f"{k}.{p}" for p in child.find(class_name)]
        return found

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name}, children={list(self.children)})"


class AttrDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access); data only."""

    def __setstate__(self, state: Any) -> None:  # EasyDict pickles an empty __dict__
        if state:
            raise UnsafePickleError("an EasyDict carrying object state")


def _load_storage(data: bytes):
    """Storages inside a plain pickle are ``torch.save`` blobs: open them with weights_only=True."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, *extra):
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise UnsafePickleError(f"a tensor rebuilt from a {type(storage).__name__}, not a storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError(f"a parameter rebuilt from a {type(data).__name__}")
    return data


_NUMERIC_KINDS = set("biufc")


def _numpy_dtype(spec, *args):
    dtype = np.dtype(spec)
    if dtype.kind not in _NUMERIC_KINDS:
        raise UnsafePickleError(f"a numpy dtype {dtype!s} (only numeric dtypes are read)")
    return dtype


def _numpy_scalar(dtype, data: bytes = b""):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or not isinstance(data, bytes):
        raise UnsafePickleError("a numpy scalar that is not a number")
    return np.frombuffer(data, dtype=dtype)[0].item()


class NumericArray(np.ndarray):
    """A numpy array rebuilt from a pickle: numeric dtype and raw bytes only (``ndarray.__reduce__``'s
    ``_reconstruct`` + ``__setstate__`` form, which protocols up to 4 and non-contiguous arrays use)."""

    def __setstate__(self, state: Any) -> None:
        ok = isinstance(state, tuple) and len(state) == 5
        dtype, raw = (state[2], state[4]) if ok else (None, None)
        if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or not isinstance(raw, bytes):
            raise UnsafePickleError("a numpy array that is not numeric raw data")
        super().__setstate__(state)


class _NdarrayName:
    """What the name ``numpy.ndarray`` resolves to: only :func:`_numpy_reconstruct` accepts it."""


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> NumericArray:
    if cls is not _NdarrayName:
        raise UnsafePickleError(f"numpy's array constructor called for {cls!r}")
    return np.ndarray.__new__(NumericArray, (0,), "b")


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Protocol 5's in-band array (``numpy._core.numeric._frombuffer``): a copy of the bytes."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or not isinstance(buf, (bytes, bytearray)):
        raise UnsafePickleError("a numpy array that is not numeric raw data")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(tuple(shape), order="F" if order == "F" else "C").copy()


ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("dnnlib.util", "EasyDict"): AttrDict,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` globals (and torch dtypes)."""

    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise UnsafePickleError(
            f"the pickle asks for {module}.{name}, which is not on the allow-list "
            "(tensors, plain containers and NVIDIA's persistent-object records)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"the pickle uses a persistent id ({type(pid).__name__})")


def load_network_pickle(path: str | Path) -> dict:
    """Unpickle an NVIDIA network snapshot (``G``, ``D``, ``G_ema``, ...) safely.

    Raises :class:`UnsafePickleError` (naming the file and what it asked for) when the stream needs
    anything outside the allow-list; nothing named in the file is executed.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = RestrictedUnpickler(f).load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: refused: {e}; nothing in it was run") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, RuntimeError) as e:
            raise ValueError(f"{path}: not a readable network pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of networks (G, D, G_ema), found {type(data).__name__}")
    return data
