"""Reference solutions, one module per assignment. Loaded only by the grader, never by student code."""
