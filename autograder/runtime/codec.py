"""Plain data across the trust boundary: JSON for scalars and containers, raw bytes for arrays.

The grader decodes with ``allow_pickle=False`` semantics and accepts only numeric and boolean arrays, so nothing
a student sends can run code, lie about equality or smuggle an object into a comparison. Decoding is bounded
before anything is allocated: total bytes, the JSON part's size and element count, nesting depth, the number of
arrays, and each array's declared size against the bytes that really follow its header (:class:`DecodeLimits`).

An array travels as a fixed binary header (its dtype's name from a closed list, its number of dimensions, its
shape) and its values in C order: no text is parsed, so reading a header costs a few microseconds (a ``.npy``
header is a Python literal, and parsing it was a tenth of each graded call's time).
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_DEPTH = 20


class CodecError(ValueError):
    """A value cannot cross the boundary as plain data."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on one decoded value: the grader's memory does not follow what a student sends."""

    max_bytes: int = 16 * 2**20  # the whole encoded value
    max_json_bytes: int = 2 * 2**20  # its JSON part (numbers, strings, containers)
    max_elements: int = 200_000  # containers and items in the JSON part
    max_arrays: int = 10_000
    max_depth: int = MAX_DEPTH


@dataclass(frozen=True)
class TensorData:
    """A torch tensor seen from the grader: its values, dtype name and device type."""

    array: np.ndarray
    dtype: str
    device: str
    requires_grad: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


def _describe(value: Any) -> str:
    return f"an object of type {type(value).__module__}.{type(value).__qualname__}"


def _to_plain(value: Any, arrays: list[np.ndarray], depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"a value nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str, int, float, np.bool_, np.integer, np.floating)):
        return _scalar(value)
    if isinstance(value, (list, tuple)):
        items = [_to_plain(v, arrays, depth + 1) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise CodecError("a dict whose keys are not all strings")
        return {"__dict__": {k: _to_plain(v, arrays, depth + 1) for k, v in value.items()}}
    return _array(value, arrays)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return _float(float(value))


def _array(value: Any, arrays: list[np.ndarray]) -> dict:
    """An array, tensor or the grader's tensor record, as a reference to its binary part."""
    if isinstance(value, np.ndarray):
        arrays.append(_plain_array(value))
        return {"__nd__": len(arrays) - 1}
    if isinstance(value, TensorData):  # a tensor the grader decoded, kept in its reference cache
        arrays.append(_plain_array(value.array))
        return {"__tensor__": len(arrays) - 1, "dtype": value.dtype, "device": value.device,
                "requires_grad": value.requires_grad}
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        data = value.detach().to("cpu")
        arrays.append(_plain_array(data.numpy() if str(data.dtype) != "torch.bfloat16" else data.float().numpy()))
        return {"__tensor__": len(arrays) - 1, "dtype": str(value.dtype).removeprefix("torch."),
                "device": value.device.type, "requires_grad": bool(value.requires_grad)}
    raise CodecError(_describe(value))


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}


def _plain_array(value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, order="C")  # a plain ndarray (a subclass's methods never run again), its values in C order
    if arr.dtype.str not in _DTYPES:
        raise CodecError(f"an array of dtype {arr.dtype} (only numbers and booleans can be graded)")
    return arr


def encode(value: Any, limits: DecodeLimits = DecodeLimits()) -> bytes:
    """Serialise ``value`` (numbers, strings, lists, tuples, str-keyed dicts, arrays, tensors); a value the other
    side would refuse under ``limits`` is refused here, with the reason."""
    arrays: list[np.ndarray] = []
    meta = json.dumps(_to_plain(value, arrays), allow_nan=False).encode()
    if len(meta) > limits.max_json_bytes or len(arrays) > limits.max_arrays:
        raise CodecError(f"a value with {len(meta) >> 10} KB of plain numbers and {len(arrays)} arrays (too large: "
                         "return numpy arrays, not long lists)")
    buf = io.BytesIO()
    buf.write(struct.pack("<I", len(arrays)))
    for arr in arrays:
        head = _array_header(arr)
        buf.write(struct.pack("<Q", len(head) + arr.nbytes))
        buf.write(head)
        buf.write(arr.tobytes())
    buf.write(meta)
    data = buf.getvalue()
    if len(data) > limits.max_bytes:
        raise CodecError(f"a value of {len(data) / 2**20:.0f} MB (the limit is {limits.max_bytes >> 20} MB)")
    return data


def decode(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Any:
    """Inverse of :func:`encode` under ``limits``; never unpickles, rejects anything but numeric arrays.

    Arrays come back read-only (views of ``data``)."""
    if len(data) > limits.max_bytes:
        raise CodecError(f"a value of {len(data) / 2**20:.0f} MB (the limit is {limits.max_bytes >> 20} MB)")
    view = memoryview(data)
    try:
        (count,) = struct.unpack_from("<I", view, 0)
        if count > limits.max_arrays:
            raise CodecError(f"{count} arrays (the limit is {limits.max_arrays})")
        pos = 4
        arrays = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", view, pos)
            pos += 8
            if size > len(view) - pos:
                raise CodecError("an array whose data is cut short")
            arrays.append(_load_array(view[pos : pos + size]))
            pos += size
        meta = bytes(view[pos:])
    except struct.error as err:
        raise CodecError("a malformed value") from err
    if len(meta) > limits.max_json_bytes:
        raise CodecError(f"{len(meta) >> 10} KB of plain numbers (the limit is {limits.max_json_bytes >> 10} KB)")
    # an upper bound on the JSON values, counted before json builds them
    if meta.count(b",") + meta.count(b"[") + meta.count(b"{") > limits.max_elements:
        raise CodecError(f"more than {limits.max_elements} plain values (the limit)")
    try:
        obj = json.loads(meta)
    except (ValueError, RecursionError) as err:
        raise CodecError("a malformed value") from err
    return _from_plain(obj, arrays, limits.max_depth)


# the dtypes an array may have across the boundary, by name (numbers and booleans, either byte order)
_DTYPES = {dtype.str: dtype for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]
           for dtype in (np.dtype(code).newbyteorder("<"), np.dtype(code).newbyteorder(">"))}
_HEAD = struct.Struct("<4sB")  # dtype name (padded), number of dimensions; then one "<Q" per dimension
MAX_DIMS = 32


def _array_header(arr: np.ndarray) -> bytes:
    return _HEAD.pack(arr.dtype.str.encode(), arr.ndim) + struct.pack(f"<{arr.ndim}Q", *arr.shape)


def _load_array(raw: memoryview) -> np.ndarray:
    """A numeric array from its header and values, its declared shape checked against the bytes that follow."""
    try:
        name, ndim = _HEAD.unpack_from(raw, 0)
        if ndim > MAX_DIMS:
            raise CodecError("an array with a malformed shape")
        shape = struct.unpack_from(f"<{ndim}Q", raw, _HEAD.size)
    except struct.error as err:
        raise CodecError("a malformed array") from err
    dtype = _DTYPES.get(name.rstrip(b"\0").decode("ascii", "replace"))
    if dtype is None:
        raise CodecError("an array that is not numeric")
    offset = _HEAD.size + 8 * ndim
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw) - offset:
        raise CodecError("an array whose declared size does not match its data")
    if count == 0:
        empty = np.empty(shape, dtype)
        empty.flags.writeable = False
        return empty
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)


def _from_plain(obj: Any, arrays: list[np.ndarray], depth: int) -> Any:
    if depth < 0:
        raise CodecError("a value nested too deeply")
    if isinstance(obj, list):
        return [_from_plain(v, arrays, depth - 1) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if not isinstance(obj, dict) or len(obj) not in (1, 4):
        raise CodecError("a malformed value")
    if "__tuple__" in obj and isinstance(obj["__tuple__"], list):
        return tuple(_from_plain(v, arrays, depth - 1) for v in obj["__tuple__"])
    if "__dict__" in obj and isinstance(obj["__dict__"], dict):
        return {k: _from_plain(v, arrays, depth - 1) for k, v in obj["__dict__"].items()}
    return _from_tagged(obj, arrays)


def _from_tagged(obj: dict, arrays: list[np.ndarray]) -> Any:
    """An array, a tensor or a non-finite float from its tagged record."""
    if "__nd__" in obj:
        return arrays[_index(obj["__nd__"], arrays)]
    if "__tensor__" in obj:
        if not (isinstance(obj.get("dtype"), str) and isinstance(obj.get("device"), str)
                and isinstance(obj.get("requires_grad"), bool)):
            raise CodecError("a malformed tensor")
        array, dtype = arrays[_index(obj["__tensor__"], arrays)], obj["dtype"]
        if TENSOR_DATA.get(dtype) != str(array.dtype):
            raise CodecError(f"a tensor whose declared dtype ({dtype[:20]}) disagrees with its data ({array.dtype})")
        return TensorData(array, dtype, obj["device"][:20], obj["requires_grad"])
    if "__float__" in obj:
        if obj["__float__"] not in ("nan", "inf", "-inf"):
            raise CodecError("a malformed number")
        return float(obj["__float__"])
    raise CodecError("a malformed value")


# a torch dtype -> the numpy dtype its values travel as (bfloat16 has none: its values travel as float32)
TENSOR_DATA = {"float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "float32",
               "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
               "complex64": "complex64", "complex128": "complex128"}


def _index(value: Any, arrays: list) -> int:
    if type(value) is not int or not 0 <= value < len(arrays):
        raise CodecError("a malformed value")
    return value
