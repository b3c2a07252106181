"""Does only plain data cross the boundary, and does nothing a student sends fool the decoder?"""

from __future__ import annotations

import math
import struct

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


def test_decoder_refuses_object_arrays_and_oversized_messages() -> None:
    with pytest.raises(CodecError, match="not numeric"):
        decode(_frame(b'{"__nd__": 0}', _array_header("|O", (1,)) + bytes(8)))
    with pytest.raises(CodecError, match="limit"):
        decode(b"\0" * (DecodeLimits().max_bytes + 1))


@pytest.mark.parametrize("dtype", sorted({np.dtype(c).newbyteorder(o).str for c in "?" + np.typecodes["AllInteger"]
                                          + np.typecodes["AllFloat"] for o in "<>"}))
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 3), (2, 3)])
def test_every_numeric_dtype_and_shape_round_trips_exactly(dtype: str, shape: tuple) -> None:
    """Numbers and booleans of every size and byte order, scalars, empty arrays: same dtype, shape and values."""
    value = (np.arange(math.prod(shape)) % 2).astype(dtype).reshape(shape)
    back = decode(encode(value))
    assert (back.dtype.str, back.shape) == (dtype, shape)
    assert np.array_equal(back, value)
    assert not back.flags.writeable


def test_strided_and_fortran_arrays_arrive_with_their_values() -> None:
    base = np.arange(24.0).reshape(4, 6)
    for value in (base.T, base[::2, 1::3], np.asfortranarray(base)):
        back = decode(encode(value))
        assert back.shape == value.shape and np.array_equal(back, value)


def _frame(meta: bytes, *arrays: bytes) -> bytes:
    return struct.pack("<I", len(arrays)) + b"".join(struct.pack("<Q", len(a)) + a for a in arrays) + meta


def _array_header(dtype: str, shape: tuple, ndim: int | None = None) -> bytes:
    """An array's header as the encoder writes it (dtype name, number of dimensions, shape), possibly lying."""
    ndim = len(shape) if ndim is None else ndim
    return struct.pack("<4sB", dtype.encode(), ndim) + struct.pack(f"<{len(shape)}Q", *shape)


@pytest.mark.parametrize(("data", "reason"), [
    (_frame(b'{"__nd__": 7}'), "malformed"),  # an array that is not there
    (_frame(b'{"__float__": "x"}'), "malformed number"),
    (_frame(b'{"__tuple__": 3}'), "malformed"),
    (_frame(b'{"__tensor__": 0}', _array_header("<f8", (1,)) + bytes(8)), "malformed"),
    (_frame(b'{"__nd__": 0}', _array_header("<f8", (10**13,)) + bytes(8)), "declared size"),  # 80 TB claimed
    (_frame(b'{"__nd__": 0}', _array_header("<f8", (2**32, 2**32, 2**32)) + bytes(8)), "declared size"),
    (_frame(b'{"__nd__": 0}', _array_header("|O", (1,)) + bytes(8)), "not numeric"),
    (_frame(b'{"__nd__": 0}', _array_header("|V8", (1,)) + bytes(8)), "not numeric"),
    (_frame(b'{"__nd__": 0}', _array_header("<M8", (1,)) + bytes(8)), "not numeric"),
    (_frame(b'{"__nd__": 0}', _array_header("\xff\xfe", (1,)) + bytes(8)), "not numeric"),
    (_frame(b'{"__nd__": 0}', _array_header("<f8", (2,)) + bytes(8)), "declared size"),  # cut short
    (_frame(b'{"__nd__": 0}', _array_header("<f8", (1,), ndim=200) + bytes(8)), "malformed shape"),
    (_frame(b'{"__nd__": 0}', _array_header("<f8", (1,), ndim=3) + bytes(8)), "malformed array"),  # shape cut short
    (_frame(b'{"__nd__": 0}', b"<f"), "malformed array"),
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
