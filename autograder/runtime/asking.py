"""Follow-through from inside the sandbox: while a graded call runs, a stubbed helper asks the grader for the
reference's value (:func:`ask`), as an :class:`~autograder.runtime.protocol.Ask` on the call server's reply pipe,
answered by an :class:`~autograder.runtime.protocol.Answer` on its request pipe."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .codec import DecodeLimits, decode, encode
from .protocol import Answer, Ask, FdReader, parse, send


class AskError(RuntimeError):
    """The grader could not answer an :func:`ask`."""


class _Asker:
    """Sends an :class:`Ask` on the call server's reply pipe and reads the :class:`Answer` from its request pipe."""

    def __init__(self, requests: FdReader, out: int, limits: DecodeLimits) -> None:
        self.requests, self.out, self.limits = requests, out, limits

    def __call__(self, probe: str, args: dict) -> Any:
        send(self.out, Ask(probe), encode(args, self.limits))
        header, body = self.requests.recv(None)
        answer = parse(header, Answer)
        if not answer.ok:
            raise AskError(answer.error.message if answer.error else "no answer")
        return decode(body, self.limits)


_asker: _Asker | None = None  # set in a call server while a call runs


@contextlib.contextmanager
def asking(requests: FdReader, out: int, limits: DecodeLimits) -> Iterator[None]:
    """Let :func:`ask` reach the grader through these pipes while one call runs."""
    global _asker
    _asker = _Asker(requests, out, limits)
    try:
        yield
    finally:
        _asker = None


def ask(probe: str, args: dict) -> Any:
    """The grader's value of ``probe`` on the reference with ``args`` (only inside a call, for follow-through)."""
    if _asker is None:
        raise AskError("ask() works only inside a graded call")
    return _asker(probe, args)
