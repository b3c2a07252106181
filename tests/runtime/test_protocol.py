"""The protocol between grader, zygote, student process and call server: typed records, validated on reading."""

from __future__ import annotations

import os

import pytest

from autograder.runtime import protocol as p


@pytest.mark.parametrize("message", [
    p.Preload(("numpy", "torch.utils.data", ".probes_a3_training_loop"), True),
    p.Ready(("numpy",), 12, 0, None, "switched off"), p.Start({"cell_seconds": 3.0}), p.CellStart(4),
    p.CellDone(4, p.StudentError(p.ErrorKind.EXCEPTION, "ValueError", "bad", (p.TraceFrame("<cell 4>", 2, "f", "x"),))),
    p.CellDone(5), p.CellsDone(), p.Call("probes.call", 2.5, "mse_loss"), p.Ask("probes.call"), p.Answer(),
    p.Reply(p.StudentError(p.ErrorKind.TIMEOUT, message="stopped")), p.End(), p.Ended(), p.Failed("bug"),
    p.Serve("probes.call:mse_loss"), p.Retire("probes.call:mse_loss", True),
])
def test_every_record_survives_a_round_trip(message) -> None:
    assert p.parse(message.to_wire(), type(message)) == message


def test_started_carries_its_cell_reports_in_the_body() -> None:
    started = p.Started((p.CellDone(0), p.CellDone(2, p.StudentError(p.ErrorKind.CRASHED, message="segv"))), True)
    back = p.parse(started.to_wire(), p.Started).with_body(started.body())
    assert back == started


@pytest.mark.parametrize(("header", "expected", "reason"), [
    ({"op": "cell_start", "index": [1]}, (p.CellStart,), "index must be an integer"),  # the forged message of #11
    ({"op": "cell_start", "index": True}, (p.CellStart,), "index must be an integer"),
    ({"op": "cell_start", "index": -1}, (p.CellStart,), "index must be an integer"),
    ([], (p.Reply,), "must be a JSON object"),
    ({"op": "reply", "error": {"kind": 7}}, (p.Reply,), "unknown error kind"),
    ({"op": "reply", "error": {"kind": "timeout", "frames": "x"}}, (p.Reply,), "frames must be a list"),
    ({"op": "call", "probe": "x" * 500, "seconds": 1, "key": "k"}, (p.Call,), "short strings"),
    ({"op": "call", "probe": "p", "seconds": float("nan"), "key": "k"}, (p.Call,), "non-negative number"),
    ({"op": "start", "limits": {}}, (p.Reply, p.Ask), "unexpected 'start' message"),
    ({"op": "launch"}, (p.Reply,), "unknown message"),
    ({"op": "preload", "modules": ["os; import x"], "warm_torch": False}, (p.Preload,), "module names"),
    ({"op": "preload", "modules": "torch", "warm_torch": False}, (p.Preload,), "module names"),
])
def test_malformed_or_unexpected_messages_are_protocol_errors(header, expected, reason) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.parse(header, *expected)


def test_long_student_text_is_clipped() -> None:
    error = p.StudentError.from_wire({"kind": "exception", "type": "E" * 500, "message": "m" * 10_000,
                                      "frames": [["f", 1, "g", "x"]] * 50})
    assert len(error.type) <= 84 and len(error.message) <= p.MAX_TEXT + 4 and len(error.frames) == p.MAX_FRAMES


def test_a_frame_declaring_more_than_the_readers_limit_is_refused_before_it_is_read() -> None:
    read, write = os.pipe()
    os.write(write, p.FRAME.pack(10, 2**40) + b"{}")
    with pytest.raises(p.ProtocolError, match="limit"):
        p.FdReader(read, max_body=2**20).recv(1)
    os.close(read)
    os.close(write)


def test_a_header_that_is_not_json_is_refused() -> None:
    read, write = os.pipe()
    os.write(write, p.FRAME.pack(3, 0) + b"{x]")
    with pytest.raises(p.ProtocolError, match="not JSON"):
        p.FdReader(read, max_body=2**20).recv(1)
    os.close(read)
    os.close(write)


def test_frames_of_every_size_arrive_whole_and_in_order() -> None:
    """Back-to-back frames, from empty to larger than one read asks for, each read whole and nothing mixed up (a
    read asks for the rest of the frame under way, at least a small chunk)."""
    import threading

    sizes = [0, 1, p.SMALL_READ - 20, p.SMALL_READ + 1, 3 * 2**20, p.BIG_READ + 5, 7]
    bodies = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    read, write = os.pipe()
    writer = threading.Thread(target=lambda: [p.send(write, p.Call("probes.call", 1.0, str(len(b))), b)
                                              for b in bodies])
    writer.start()
    reader = p.FdReader(read, max_body=2**25)
    for body in bodies:
        header, data = reader.recv(30)
        assert p.parse(header, p.Call).key == str(len(body)) and data == body
    writer.join()
    os.close(read)
    os.close(write)
