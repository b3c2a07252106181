"""nbgrader's side of a graded course: the autograded notebooks ``nbgrader autograde`` would leave
(``autograded``), the gradebook's scores and flags (``gradebook``), and the hidden tests under stock ``nbgrader
autograde`` (``bridge``; released notebooks import it as ``autograder.nbgrader_bridge``)."""
