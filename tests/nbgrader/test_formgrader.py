"""Formgrader on a course graded by ``dlgrade grade`` alone: the submissions list shows dlgrade's scores, every
submission page opens (HTTP 200) with dlgrade's results in its test cells, and a written answer graded in the page
adds to the total. The browser test drives Debian's chromium through selenium (``--no-sandbox``: CI runs as root)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import A1, TEST_LIMITS, release_a1

from autograder.authoring import samples
from autograder.course.points import format_points
from autograder.grading.batch import grade_course
from autograder.reporting.results import read_result

# its module fixtures build a course (or an image) once: every test of this file runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("formgrader")

NAME = A1.notebook
TOKEN = "dlgrade-formgrader-test"
STUDENTS = ("ada", "ben", "cy")  # full marks, the typical mistakes, the release untouched


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("formgrader")
    course = release_a1(root)
    notebooks = {"ada": samples.build(A1), "ben": samples.build(A1, A1.suite.typical_mistakes),
                 "cy": samples.build(A1, solved=False)}
    for student, nb in notebooks.items():
        folder = root / "submitted" / student / A1.id
        samples.write(nb, folder / NAME)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
    summary = grade_course(course, workers=2, limits=TEST_LIMITS)
    assert len(summary.graded) == len(STUDENTS) and not summary.errors
    return root


@pytest.fixture(scope="module")
def formgrader(graded: Path) -> Iterator[str]:
    """A Jupyter server with nbgrader's formgrader extension on a free local port, in the course folder."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(graded / "formgrader.log", "w")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
         '--ServerApp.jpserver_extensions={"nbgrader.server_extensions.formgrader": True}'],
        cwd=graded, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(graded / ".jupyter-config")})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get(base, "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("formgrader did not start:\n" + (graded / "formgrader.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def get(base: str, path: str) -> tuple[int, str]:
    """GET with the server's token; (status, body). Raises OSError while the server is not up."""
    sep = "&" if "?" in path else "?"
    try:
        with urllib.request.urlopen(f"{base}{path}{sep}token={TOKEN}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def submission_ids(base: str) -> dict[str, str]:
    """student -> submitted notebook id, from formgrader's own API."""
    status, body = get(base, f"/formgrader/api/submitted_notebooks/{A1.id}/{Path(NAME).stem}")
    assert status == 200, body
    return {row["student"]: row["id"] for row in json.loads(body)}


@pytest.mark.slow
def test_formgrader_lists_every_submission_as_autograded_with_dlgrades_score(graded, formgrader) -> None:
    """Issue #14, 3: not 'not autograded, 0.0 / 0.0': the list shows each submission's dlgrade score."""
    status, body = get(formgrader, f"/formgrader/api/submissions/{A1.id}")
    assert status == 200, body
    rows = {row["student"]: row for row in json.loads(body)}
    assert sorted(rows) == sorted(STUDENTS)
    for student in STUDENTS:
        result = read_result(graded / "graded" / student / A1.id)
        assert rows[student]["autograded"] and rows[student]["code_score"] == result.score, student
        assert rows[student]["max_code_score"] == result.max_score
    assert rows["ada"]["needs_manual_grade"] and not rows["cy"]["needs_manual_grade"]  # cy's answers are blank


@pytest.mark.slow
def test_every_submission_page_opens_with_dlgrades_results(graded, formgrader) -> None:
    """Issue #14, 3: each submission's grading page returns 200 (it was 500) and shows dlgrade's report."""
    ids = submission_ids(formgrader)
    assert sorted(ids) == sorted(STUDENTS)
    for student, notebook_id in ids.items():
        status, body = get(formgrader, f"/formgrader/submissions/{notebook_id}/")
        assert status == 200, (student, body[-2000:])
        assert "dlgrade: " in body and "points for normal_equation" in body, student
    assert "use .ravel(), .squeeze() or" in get(formgrader, f"/formgrader/submissions/{ids['ben']}/")[1]


# -- in a real browser ---------------------------------------------------------------------------------------------

def _browser():
    """A headless chromium driven by selenium, or a skip saying what is missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver); .ci/run installs them")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install "
                                    "-e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture
def browser() -> Iterator:
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(predicate, seconds: float = 30):
    """The first truthy value of ``predicate()`` within ``seconds`` (pages fill their tables with JavaScript, and
    may redraw them while they are read: an element gone stale is read again)."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while True:
        try:
            value = predicate()
        except StaleElementReferenceException:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


@pytest.mark.slow
def test_in_a_browser_formgrader_shows_the_scores_and_written_answers_add_to_the_total(browser, graded,
                                                                                        formgrader) -> None:
    """In chromium: the submissions list shows each dlgrade score out of the notebook's total; ben's grading page
    shows dlgrade's hint under his test cell and dlgrade's auto scores in the score boxes; a TA gives his written
    derivation 2.5 points there, and the list then shows auto + manual."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    scores = {s: read_result(graded / "graded" / s / A1.id).score for s in STUDENTS}
    total = sum(A1.points.values()) + 5  # the two written answers: 3 + 2
    browser.get(f"{formgrader}/?token={TOKEN}")

    def submissions_table() -> dict[str, str]:
        browser.get(f"{formgrader}/formgrader/manage_submissions/{A1.id}")
        rows = wait_for(lambda: [r.text for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
                                 if any(s in r.text for s in STUDENTS)])
        return {s: next(r for r in rows if f" {s} " in f" {r} ") for s in STUDENTS}

    table = submissions_table()
    for student in STUDENTS:
        assert f"{format_points(scores[student])} / {format_points(total)}" in table[student], table

    browser.get(f"{formgrader}/formgrader/submissions/{submission_ids(formgrader)['ben']}/")
    assert wait_for(lambda: "dlgrade: 0 of 2 points for normal_equation" in browser.find_element(By.TAG_NAME,
                                                                                                 "body").text)
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "use .ravel(), .squeeze() or" in page
    ben = read_result(graded / "graded" / "ben" / A1.id).function_scores()
    boxes = wait_for(lambda: {b.get_attribute("id"): b.get_attribute("placeholder")
                              for b in browser.find_elements(By.CSS_SELECTOR, "input.score")
                              if b.get_attribute("placeholder")})
    assert {f"test_{f}": format_points(s) for f, s in ben.items()} == {k: format_points(float(v))
                                                                        for k, v in boxes.items()}
    answer = browser.find_element(By.ID, "derive_normal_equation")
    answer.clear()
    answer.send_keys("2.5", Keys.TAB)
    from nbgrader.api import Gradebook

    def saved() -> bool:
        with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gb:
            return gb.find_grade("derive_normal_equation", "linear_regression", A1.id, "ben").manual_score == 2.5

    assert wait_for(saved), "the manual score typed in formgrader never reached the gradebook"
    table = submissions_table()
    assert f"{format_points(scores['ben'] + 2.5)} / {format_points(total)}" in table["ben"], table
