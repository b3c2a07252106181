"""The check API a course's checks are written in: the suite and its catalogue (``suite``), what one check sees
and how it runs (``trial``), where student and reference values come from (``sides``), how values are compared
(``compare``), what feedback may show (``disclosure``), how student errors are worded (``messages``), tolerances,
seeds and devices (``policy``), and the reference's cached outputs (``refcache``). Checks import it through
``autograder`` (its ``__all__``)."""
