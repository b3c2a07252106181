"""Does only plain data cross the boundary, and does nothing a student sends fool the decoder?"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.runtime.codec import MAX_MESSAGE_BYTES, CodecError, TensorData, decode, encode


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
        def __eq__(self, other):  # noqa: D105
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
        decode(b"\0" * (MAX_MESSAGE_BYTES + 1))
