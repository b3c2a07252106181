"""Grading: one submission (``grader``: read it, replay it in a sandbox, run the checks, decide the points), a course
folder's batch (``batch``: jobs, shards, worker threads), parallel sandboxes for one submission (``parallel``), a
student's own public tests (``public_tests``: ``dlgrade check``) and a step-by-step profile (``profiling``)."""
