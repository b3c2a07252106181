"""dlgrade inside other tools: the checks as pytest items (``pytest_plugin``; loaded as ``-p
autograder.pytest_plugin``) and a Gradescope autograder bundle (``gradescope``, its shell scripts beside it in
``gradescope_scripts/``)."""
