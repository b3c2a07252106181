"""``python -m autograder`` is ``dlgrade``."""

import sys

from .cli import main

sys.exit(main())
