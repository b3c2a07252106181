"""Does only plain data cross the boundary, and does nothing a student sends fool the decoder?"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.runtime.codec import CodecError, DecodeLimits, TensorData, decode, encode


def test_round_trip_keeps_types_shapes_and_special_floats() -> None:
    value = {"a": (1, 2.5, None, True), "b": [np.arange(6.0).reshape(2, 3)], "c": float("nan"), "d": float("-inf")}
    back = decode(encode(value))
    assert back["a"] == (1, 2.5, None, True)
    assert back["b"][0].shape == (2, 3) and back["b"][0].dtype == np.float64
    assert np.isnan(back["c"]) and back["d"] == float("-inf")


def test_tensor_comes_back_as_tensor_data_with_dtype_and_device() -> None:
    back = decode(encode(torch.ones(2, 3, requires_grad=True)))
    assert isinstance(back, TensorData)
    assert (back.dtype, back.device, back.shape, back.requires_grad) == ("float32", "cpu", (2, 3), True)


def test_object_array_is_refused() -> None:
    with pytest.raises(CodecError, match="dtype object"):
        encode(np.array([object()], dtype=object))


def test_arbitrary_object_is_refused_with_its_type() -> None:
    class Sneaky:
        pass

    with pytest.raises(CodecError, match="Sneaky"):
        encode(Sneaky())


def test_lying_ndarray_subclass_arrives_as_a_plain_array() -> None:
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    liar = np.zeros(3).view(Liar)
    back = decode(encode(liar))
    assert type(back) is np.ndarray
    assert not np.array_equal(back, np.ones(3))


def test_decoder_refuses_pickled_arrays_and_oversized_messages() -> None:
    import io
    import struct

    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    raw = buf.getvalue()
    forged = struct.pack("<I", 1) + struct.pack("<Q", len(raw)) + raw + b'{"__nd__": 0}'
    with pytest.raises(CodecError):
        decode(forged)
    with pytest.raises(CodecError, match="limit"):
        decode(b"\0" * (DecodeLimits().max_bytes + 1))


def _frame(meta: bytes, *arrays: bytes) -> bytes:
    import struct

    return struct.pack("<I", len(arrays)) + b"".join(struct.pack("<Q", len(a)) + a for a in arrays) + meta


def _npy_header(descr: str, shape: tuple) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize(("data", "reason"), [
    (_frame(b'{"__nd__": 7}'), "malformed"),  # an array that is not there
    (_frame(b'{"__float__": "x"}'), "malformed number"),
    (_frame(b'{"__tuple__": 3}'), "malformed"),
    (_frame(b'{"__tensor__": 0}', _npy_header("<f8", (1,)) + bytes(8)), "malformed"),
    (_frame(b'{"__nd__": 0}', _npy_header("<f8", (10**13,)) + bytes(8)), "declared size"),  # 80 TB claimed
    (_frame(b'{"__nd__": 0}', _npy_header("|O", (1,)) + bytes(8)), "not numeric"),
    (_frame(b'{"__nd__": 0}', _npy_header("<f8", (2,)) + bytes(8)), "declared size"),  # cut short
    (_frame(b"[" * 100 + b"]" * 100), "nested"),
    (_frame(b"[" * 100_000 + b"]" * 100_000), "malformed"),  # deeper than json's recursion limit
    (_frame(b"[" + b"[]," * 600_000 + b"[]]"), "limit"),  # 1.8 MB of empty lists: refused before parsing
    (_frame(b'{"__nd__": 0}') + b"x", "malformed"),
])
def test_crafted_values_are_refused_before_anything_large_is_built(data, reason) -> None:
    """Does every hand-made reply a student process could send fail with a CodecError (never another error, never
    a big allocation)?"""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CodecError, match=reason):
        decode(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_decoded_arrays_match_the_declared_shape_and_are_read_only() -> None:
    back = decode(encode({"a": np.arange(12.0).reshape(3, 4).T}))
    assert back["a"].shape == (4, 3) and np.array_equal(back["a"], np.arange(12.0).reshape(3, 4).T)
    with pytest.raises(ValueError):
        back["a"][0, 0] = 1.0


def test_an_honest_value_over_the_limits_is_refused_when_encoded_with_the_reason() -> None:
    with pytest.raises(CodecError, match="too large"):
        encode(list(range(1_000_000)))
