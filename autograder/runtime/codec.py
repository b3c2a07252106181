"""Plain data across the trust boundary: JSON for scalars and containers, ``.npy`` for arrays.

The grader decodes with ``allow_pickle=False`` and accepts only numeric and boolean arrays, so nothing
a student sends can run code, lie about equality or smuggle an object into a comparison.
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 64 * 2**20
_ARRAY_KINDS = "biufc"


class CodecError(ValueError):
    """A value cannot cross the boundary as plain data."""


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
    if depth > 20:
        raise CodecError("a value nested more than 20 levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, np.ndarray):
        arrays.append(_plain_array(value))
        return {"__nd__": len(arrays) - 1}
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        data = value.detach().to("cpu")
        arrays.append(_plain_array(data.numpy() if str(data.dtype) != "torch.bfloat16" else data.float().numpy()))
        return {
            "__tensor__": len(arrays) - 1,
            "dtype": str(value.dtype).removeprefix("torch."),
            "device": value.device.type,
            "requires_grad": bool(value.requires_grad),
        }
    if isinstance(value, (list, tuple)):
        items = [_to_plain(v, arrays, depth + 1) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise CodecError("a dict whose keys are not all strings")
        return {"__dict__": {k: _to_plain(v, arrays, depth + 1) for k, v in value.items()}}
    raise CodecError(_describe(value))


def _float(x: float) -> Any:
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}


def _plain_array(value: np.ndarray) -> np.ndarray:
    arr = np.array(value, copy=True, subok=False)
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise CodecError(f"an array of dtype {arr.dtype} (only numbers and booleans can be graded)")
    return arr


def encode(value: Any) -> bytes:
    """Serialise ``value`` (numbers, strings, lists, tuples, str-keyed dicts, arrays, tensors)."""
    arrays: list[np.ndarray] = []
    meta = json.dumps(_to_plain(value, arrays), allow_nan=False).encode()
    buf = io.BytesIO()
    buf.write(struct.pack("<I", len(arrays)))
    for arr in arrays:
        part = io.BytesIO()
        np.save(part, arr, allow_pickle=False)
        raw = part.getvalue()
        buf.write(struct.pack("<Q", len(raw)))
        buf.write(raw)
    buf.write(meta)
    return buf.getvalue()


def decode(data: bytes) -> Any:
    """Inverse of :func:`encode`; never unpickles, rejects anything but numeric arrays."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise CodecError(f"a value of {len(data) / 2**20:.0f} MB (the limit is {MAX_MESSAGE_BYTES >> 20} MB)")
    view = memoryview(data)
    try:
        (count,) = struct.unpack_from("<I", view, 0)
        pos = 4
        arrays = []
        for _ in range(count):
            (size,) = struct.unpack_from("<Q", view, pos)
            pos += 8
            arr = np.load(io.BytesIO(view[pos : pos + size]), allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in _ARRAY_KINDS:
                raise CodecError("an array that is not numeric")
            arrays.append(arr)
            pos += size
        meta = json.loads(bytes(view[pos:]))
    except (struct.error, ValueError, OSError, EOFError) as err:
        if isinstance(err, CodecError):
            raise
        raise CodecError(f"a malformed value ({err})") from err
    return _from_plain(meta, arrays)


def _from_plain(obj: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_from_plain(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__nd__" in obj:
        return arrays[obj["__nd__"]]
    if "__tensor__" in obj:
        return TensorData(arrays[obj["__tensor__"]], str(obj["dtype"]), str(obj["device"]), bool(obj["requires_grad"]))
    if "__tuple__" in obj:
        return tuple(_from_plain(v, arrays) for v in obj["__tuple__"])
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__dict__" in obj:
        return {k: _from_plain(v, arrays) for k, v in obj["__dict__"].items()}
    raise CodecError("a malformed value")


# -- framing: each message is a JSON header and an optional binary body ------------------------------


class FdReader:
    """Reads framed messages from a raw pipe fd with a deadline (select + os.read)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()

    def recv(self, timeout: float | None) -> tuple[dict, bytes]:
        """One message, or ``TimeoutError`` after ``timeout`` seconds, or ``EOFError``."""
        import os
        import select
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self._parse()
            if msg is not None:
                return msg
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("peer closed the channel")
            self._buf += chunk

    def _parse(self) -> tuple[dict, bytes] | None:
        if len(self._buf) < 12:
            return None
        head_len, body_len = struct.unpack_from("<IQ", self._buf, 0)
        if head_len > 2**20 or body_len > MAX_MESSAGE_BYTES:
            raise EOFError("message too large")
        end = 12 + head_len + body_len
        if len(self._buf) < end:
            return None
        try:
            header = json.loads(bytes(self._buf[12 : 12 + head_len]))
        except ValueError as err:
            raise EOFError("malformed message") from err
        body = bytes(self._buf[12 + head_len : end])
        del self._buf[:end]
        if not isinstance(header, dict):
            raise EOFError("malformed message")
        return header, body


def write_fd(fd: int, header: dict, body: bytes = b"", timeout: float | None = None) -> None:
    """Write one framed message to a raw fd; ``TimeoutError`` if the reader stalls past ``timeout``."""
    import os
    import select
    import time

    head = json.dumps(header).encode()
    data = memoryview(struct.pack("<IQ", len(head), len(body)) + head + body)
    deadline = None if timeout is None else time.monotonic() + timeout
    while data:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
        n = os.write(fd, data[:4096] if deadline is not None else data)
        data = data[n:]
