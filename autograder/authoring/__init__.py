"""What an instructor makes with: ``dlgrade init`` and ``dlgrade new`` (``scaffold``), ``dlgrade audit`` (``audit``:
which plausible bugs the checks let through), sample submissions (``samples``) and ``dlgrade demo`` (``demo``)."""
