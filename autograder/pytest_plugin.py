"""Where pytest finds dlgrade's plugin: ``python -m pytest -p autograder.pytest_plugin --submission NB`` (the code is
``autograder/integrations/pytest_plugin.py``; pytest reads the hooks below from this module)."""

from .integrations.pytest_plugin import (
    pytest_addoption,
    pytest_collection,
    pytest_configure,
    pytest_unconfigure,
)

__all__ = ["pytest_addoption", "pytest_collection", "pytest_configure", "pytest_unconfigure"]
