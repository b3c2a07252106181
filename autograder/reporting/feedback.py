"""feedback.html: what a student reads after grading."""

from __future__ import annotations

from html import escape

from autograder.reporting.results import SubmissionResult

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}
.pass{color:#1a7f37}.fail{color:#b42318}pre{white-space:pre-wrap;margin:0;font-size:.9em}.score{font-size:1.4em}"""


def render(result: SubmissionResult) -> str:
    """The HTML feedback page for one submission (everything escaped)."""
    rows = []
    for test in result.tests:
        ok = test.score >= test.max_score and not test.output.startswith("Advisory")
        status = ('<span class="pass">passed</span>' if ok else '<span class="fail">failed</span>' if test.max_score
                  else '<span class="fail">advisory</span>')
        rows.append(f"<tr><td>{escape(test.name)}</td><td>{status}</td>"
                    f"<td>{test.score:g} / {test.max_score:g}</td><td><pre>{escape(test.output)}</pre></td></tr>")
    notes = f"<h2>Notes</h2><pre>{escape(result.output)}</pre>" if result.output else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {escape(result.assignment)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(result.assignment)} — {escape(result.student)}</h1>
<p class="score">Score: <b>{result.score:g} / {result.max_score:g}</b></p>
<p>Written answers are graded by hand and are not part of this score.</p>
{notes}
<h2>Tests</h2>
<table><tr><th>test</th><th>result</th><th>points</th><th>what to look at</th></tr>
{''.join(rows)}
</table></body></html>
"""
