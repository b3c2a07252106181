"""Code that runs inside the sandbox, beside student code.

Nothing in this package may import from the rest of ``autograder`` or from ``solutions``: the sandbox
mounts this folder alone (as the package ``dlgrade_runtime``), so it must hold no answers and no hidden
tests. The grader imports the same modules as ``autograder.runtime``.
"""
