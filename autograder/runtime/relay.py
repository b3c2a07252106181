"""One relay: the only code by which a graded call crosses a hop of the boundary, at each of its two hops.

A call goes grader -> zygote -> its function's call server and back (the notebook's process forks the server on
pipes the zygote made, and is not on the way). At each hop the same exchange happens: the call goes down; from
below come questions (:class:`Ask`, a probe asking for the reference's value under follow-through) until the
:class:`Reply`; each question is answered (the grader answers itself; the zygote passes it up and the answer back
down with :func:`forward`). Deadlines, limits and what a failure means stay with the
caller: the grader bounds the questions per call (``Limits.asks_per_call``), every hop bounds the wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .protocol import Answer, Ask, Call, FdReader, Message, ProtocolError, Reply, parse, send

Down = Callable[[Message, bytes], None]  # send a message (and its body) to the hop below
Up = Callable[[float], tuple[Message, bytes]]  # the next Reply or Ask from below, within that many seconds
Answerer = Callable[[Ask, bytes], tuple[Answer, bytes]]


class TooManyAsks(ProtocolError):
    """A call asked more follow-through questions than it may (``Limits.asks_per_call``)."""


def relay(call: Call, body: bytes, down: Down, up: Up, answer: Answerer, deadline: float,
          max_asks: int | None = None) -> tuple[Reply, bytes]:
    """Send ``call`` below and answer its questions until its reply, by ``deadline`` (``time.monotonic``)."""
    down(call, body)
    asks = 0
    while True:
        message, data = up(max(0.0, deadline - time.monotonic()))
        if isinstance(message, Reply):
            return message, data
        asks += 1
        if max_asks is not None and asks > max_asks:
            raise TooManyAsks(f"it asked for a correct helper's value more than {max_asks:,} times")
        down(*answer(message, data))


def pipes(to: int, replies: FdReader, timeout: float) -> tuple[Down, Up]:
    """The hop below reached through a pipe ``to`` it and a reader of its ``replies``."""

    def down(message: Message, body: bytes) -> None:
        send(to, message, body, timeout=timeout)

    def up(seconds: float) -> tuple[Message, bytes]:
        header, data = replies.recv(seconds)
        return parse(header, Reply, Ask), data

    return down, up


def forward(to: int, inbox: FdReader) -> Answerer:
    """Answer a question by passing it up (``to``) and waiting for the answer from above (``inbox``)."""

    def answer(ask: Ask, data: bytes) -> tuple[Answer, bytes]:
        send(to, ask, data)
        header, body = inbox.recv(None)
        return parse(header, Answer), body

    return answer
