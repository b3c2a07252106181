"""What a failed check may tell the student: decided here, once, for the public example and for hidden cases.

A failure is data, a :class:`Problem`: a sentence that depends on no input value (``text``: what differs, as a
fixed category such as "differs from the expected values" or "has the wrong shape"), the same sentence with the
details that do depend on the inputs (``detail``: values, indices, sizes, error magnitudes, the student's own
exception message and traceback), and a diagnosis (``hint``) whose wording is fixed by its kind. The public
example (seed 0, which a student can reproduce) shows the detail; a hidden case shows only the text and the
hint, so that resubmitting a notebook cannot read hidden inputs or expected values back from the feedback.

Rules for whoever writes a check: ``text`` and ``hint`` are written without any value computed from the trial's
inputs or from either side's results (names of parts of a result, such as a dict key of the expected value, are
fine); everything else goes in ``detail``.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, replace

# Categories a hidden case may report, in the words the feedback uses.
DIFFERS = "differs from the expected values"
WRONG_SHAPE = "has the wrong shape"
WRONG_TYPE = "is not of the expected type"
WRONG_DTYPE = "has the wrong dtype"
NAN = "contains NaN where a finite value was expected"
INF = "contains inf where a finite value was expected"


@dataclass(frozen=True)
class Problem:
    """Why a check failed: ``text`` is safe on any case, ``detail`` (when given) replaces it on the public one."""

    text: str
    detail: str = ""
    hint: str = ""

    def with_hint(self, hint: str) -> Problem:
        return replace(self, hint=hint)


def shown(problem: Problem, public: bool) -> str:
    """The feedback for ``problem`` on the public example (``public``) or on a hidden case."""
    text = (problem.detail or problem.text) if public else problem.text
    return f"{text} Hint: {problem.hint}" if problem.hint else text


def exception_type(name: str | None) -> str:
    """The name of an exception type for a hidden case: Python's own exception names only (a class the student
    made up can carry any text in its name)."""
    if name and isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), BaseException):
        return name
    return "an exception"


# -- plain grammar for any name plugged into a template ------------------------------------------------------------

_PLURAL_VERBS = {"is": "are", "has": "have", "was": "were", "does": "do", "differs": "differ", "contains": "contain",
                 "holds": "hold", "matches": "match", "needs": "need"}
_HEAD_END = re.compile(r" (?:of|after|for|with|on|in|from|to|at|without|under)\b| \(")


def plural(subject: str) -> bool:
    """Whether a named result reads as a plural noun ("the probabilities", "the weights after one step"), judged on
    its head noun: the last word before a qualifier ("of ...", "after ...", "(...)")."""
    part = re.fullmatch(r"in .+?, (.+)", subject.strip(), re.DOTALL)  # "in the gradients, 'dW_h'": the part named
    head = _HEAD_END.split(part.group(1) if part else subject.strip(), maxsplit=1)[0].split()
    if not head or head[0][:1] in "'\"`":  # a quoted dict key names one entry
        return False
    word = head[-1]
    return (word.isalpha() and len(word) > 2 and word.endswith("s")
            and not word.endswith(("ss", "us", "is", "as", "ics")))


def agree(subject: str, phrase: str) -> str:
    """``phrase`` (whose first word is a verb in the singular: "has the wrong shape") agreeing with ``subject``."""
    if not plural(subject):
        return phrase
    verb, _, rest = phrase.partition(" ")
    return f"{_PLURAL_VERBS.get(verb, verb)}{' ' if rest else ''}{rest}"


def said(subject: str, phrase: str) -> str:
    """``subject`` followed by ``phrase`` in agreement: ``said("the weights", DIFFERS)``."""
    return f"{subject} {agree(subject, phrase)}"


def pronoun(subject: str) -> str:
    """"it" or "they", for ``subject``."""
    return "they" if plural(subject) else "it"


# -- an exception's message on a hidden case --------------------------------------------------------------------------

# dtype names keep their digits; any other number in a message may come from a hidden input
_DTYPES = re.compile(r"\b(?:b?float(?:16|32|64)|u?int(?:8|16|32|64)|complex(?:64|128))\b")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf|NaN|Inf)\b")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
# words a library's message may quote that reveal nothing of the inputs: Python's own names, dtype and type names
_SAFE_WORDS = frozenset(dir(builtins)) | {
    "NoneType", "ndarray", "numpy.ndarray", "Tensor", "torch.Tensor", "numpy", "torch", "same_kind", "safe",
    "function", "method", "builtin_function_or_method", "module", "generator", "cpu", "cuda", "mps", "float16",
    "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "complex64", "complex128", "object",
    "add", "subtract", "multiply", "divide", "true_divide", "matmul", "dot", "Linear", "Module", "Sequential"}
MASKED_MESSAGE_CHARS = 200


def masked(message: str, known: str = "") -> str:
    """An exception's message with every number masked (``#``) and every quoted text masked (``'…'``) unless it is a
    name that reveals nothing (Python's, numpy's or torch's own names) or one that occurs in ``known`` (the student's
    own line, which the feedback shows anyway): what is left does not depend on hidden values, only on the kind
    of error ("shapes (#,#) and (#,) not aligned")."""
    words = set(re.findall(r"[A-Za-z_][\w.]*", known))

    def quoted(match: re.Match) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if inner in _SAFE_WORDS or inner in words else "'…'"

    def numbers(text: str) -> str:
        kept = _DTYPES.findall(text)
        text = _NUMBER.sub("#", _DTYPES.sub("\0", text))
        for name in kept:
            text = text.replace("\0", name, 1)
        return text

    parts, last = [], 0
    for match in _QUOTED.finditer(message):
        parts += [numbers(message[last:match.start()]), quoted(match)]
        last = match.end()
    parts.append(numbers(message[last:]))
    text = "".join(parts)
    return text if len(text) <= MASKED_MESSAGE_CHARS else text[:MASKED_MESSAGE_CHARS] + " ..."
