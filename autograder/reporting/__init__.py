"""Reporting: results as data (``results``), the files a course gets, each written whole or not at all (``files``:
results.json and feedback.html per submission, grades.csv, grades.svg, the gradebook), the student's feedback page
(``feedback``), the score histogram (``plots``), the TA's summary table (``summary``), the progress bar
(``progress``), and names made harmless for terminals and spreadsheets (``untrusted``)."""
