"""The sandbox's own failure, told apart from anything the student's code did."""


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code), or this host cannot sandbox as required."""
