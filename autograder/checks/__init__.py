"""Grading checks, one module per assignment (hidden from student processes)."""
