"""dlgrade: auto-graded deep-learning exercises with a sandboxed, pytest-style grader."""

__version__ = "0.1.0"
