"""The grader's own memory, whatever a student sends: honest grading against the worst replies a student process
can forge.

    python benchmarks/bench_memory.py

Grades, on one worker and in this process (the grader's), an honest a1 notebook, then notebooks whose graded
functions write hand-made frames to the grader's pipe: the largest body a reply may have (16 MB) filled with
nested empty lists (which once made the grader use 3.2 GB), an array header declaring 10^13 floats, a JSON reply
header of 1 MB, and a 3 GB sparse notebook file. Prints the grader process's peak resident memory (ru_maxrss)
after each, and the bound the limits set: two copies of the largest reply (16 MB each) per worker thread, beyond
the grader's baseline. Nothing here is a test.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from autograder.authoring import samples
from autograder.course import Course, builtin_course, sandbox_imports
from autograder.grading.grader import Grader
from autograder.sandbox import Limits, Worker

BUILTIN = Course(builtin_course())
A1 = BUILTIN.assignment("a1_linear_regression")

FORGE = ("def add_intercept(X):\n"
         "    import sys, os, struct\n"
         "    frame = sys._getframe()\n"
         "    while frame is not None and 'out' not in frame.f_locals:\n"
         "        frame = frame.f_back\n"
         "    head, body = {head}, {body}\n"
         "    os.write(frame.f_locals['out'], struct.pack('<IQ', len(head), len(body)) + head + body)\n"
         "    import time\n"
         "    time.sleep(30)\n")
NESTED = "b'\\x00\\x00\\x00\\x00' + b'[' + b'[],' * (16 * 2**20 // 3 - 10) + b'[]]'"
ARRAY = ("b'\\x01\\x00\\x00\\x00' + (13).to_bytes(8, 'little') + b'<f8\\x00\\x01' + (10**13).to_bytes(8, 'little')"
         " + b'{\"__nd__\": 0}'")
CASES = {
    "16 MB of nested empty lists": FORGE.format(head="b'{\"op\": \"reply\", \"error\": null}'", body=NESTED),
    "an array declaring 10^13 floats": FORGE.format(head="b'{\"op\": \"reply\", \"error\": null}'", body=ARRAY),
    "a 1 MB reply header": FORGE.format(head="b'{\"op\": \"reply\", \"error\": null, \"x\": \"' + b'a' * (2**20 - 50)"
                                        " + b'\"}'", body="b''"),
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    grader = Grader(A1)
    limits = Limits()
    with tempfile.TemporaryDirectory() as tmp, Worker(0, limits, sandbox_imports([A1])[0],
                                                      hide=BUILTIN.secrets) as worker:
        root = Path(tmp)

        def grade(name: str, nb) -> None:
            folder = root / name / A1.id
            samples.write(nb, folder / A1.notebook)
            start = time.perf_counter()
            result = grader.grade(folder, worker, name)
            print(f"  {name:<36} {result.score:5.1f}/{result.max_score:g} in {time.perf_counter() - start:4.1f} s; "
                  f"grader peak so far {peak_mib():6.0f} MiB")

        print(f"grader before grading: {peak_mib():.0f} MiB")
        grade("honest", samples.build(A1))
        baseline = peak_mib()
        for name, code in CASES.items():
            grade(name, samples.build(A1, {"add_intercept": code}))
        big = root / "sparse" / A1.id / A1.notebook
        big.parent.mkdir(parents=True)
        with open(big, "wb") as f:
            f.truncate(3 * 2**30)
        start = time.perf_counter()
        result = grader.grade(big.parent, worker, "sparse")
        print(f"  {'a 3 GB sparse notebook file':<36} {result.score:5.1f}/{result.max_score:g} in "
              f"{time.perf_counter() - start:4.1f} s; grader peak so far {peak_mib():6.0f} MiB")
    bound = 2 * limits.reply_bytes / 2**20
    print(f"\nhostile replies added {peak_mib() - baseline:.0f} MiB to the grader's peak after honest grading "
          f"(bound: {bound:.0f} MiB per worker thread: the reply's bytes and one copy)")


if __name__ == "__main__":
    main()
