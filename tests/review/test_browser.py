"""The review console in a real browser: headless Debian ``chromium`` driven by Selenium through
Debian's ``chromium-driver``. Logs in with a reviewer key, opens the queue, judges a trace with
the keyboard shortcuts and the form, checks the judgment in the trace store over the API and in
``ragctx eval export --from-traces`` (a test case of the exported set), then compares the trace
under a candidate policy on the policy diff page and opens the quality page over real report
history.

Screenshots are saved under ``tests/artifacts/`` (gitignored): ``review-queue.png``,
``review-trace.png`` (the trace page as opened), ``review-trace-judged.png`` (judged, before
saving), ``review-diff.png`` and ``review-quality.png``.
Skips, saying why, where the browser or Selenium is missing (``make install`` installs them).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.runtime import Models
from service.wiring import trace_db_url
from tests.cli import ragctx
from tests.review.conftest import ReviewSetup, file_eval_runs
from tests.service.conftest import auth, key_of

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (make install installs it)"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (make install runs "
    "apt-get install -y chromium chromium-driver where apt can run)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root (CI containers); the page is our own
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _console_errors(driver: Any) -> list[str]:
    """SEVERE browser log lines (a CSP violation is one) since the last call."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]


def test_a_reviewer_logs_in_opens_the_queue_and_judges_a_trace(
    review: ReviewSetup,
    browser: Any,
    models: Models,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = review.server.url
    browser.get(f"{base}/review/queue")  # no cookie yet: sent to the login page
    _wait(browser, "#key").send_keys(key_of("reviewer-acme"))
    browser.find_element(By.ID, "login-submit").click()
    _wait(browser, "#filters")
    assert browser.current_url.endswith("/review/queue")
    # every trace, not only those that need review: the test's trace may have no reason
    Select(browser.find_element(By.NAME, "show")).select_by_value("all")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    link = _wait(browser, f"a.open[href='/review/traces/{review.acme_trace}']")
    browser.save_screenshot(str(ARTIFACTS / "review-queue.png"))
    link.click()
    _wait(browser, "#judge")
    browser.save_screenshot(str(ARTIFACTS / "review-trace.png"))
    assert browser.find_element(By.ID, "trace-id").text == review.acme_trace
    # the XSS document's text is shown as text: no alert, the payload visible in the page
    assert '<script>alert("pwned")</script>' in browser.find_element(By.ID, "candidates").text
    first = browser.find_elements(By.CSS_SELECTOR, "tr.candidate")[0]
    chunk = first.get_attribute("data-chunk")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("j")  # first candidate
    body.send_keys("y")  # relevant
    body.send_keys("a")  # verdict: accepted
    assert first.find_element(By.CSS_SELECTOR, "input.relevant").is_selected()
    assert browser.find_element(By.ID, "verdict-accepted").is_selected()
    browser.find_element(By.ID, "note").send_keys("judged in the browser test")
    browser.save_screenshot(str(ARTIFACTS / "review-trace-judged.png"))
    browser.find_element(By.ID, "save").click()
    _wait(browser, "#saved")
    # the page's own script ran under the CSP, and nothing broke it
    assert _console_errors(browser) == []
    with review.server.client() as c:
        got = c.get(f"/v1/traces/{review.acme_trace}", headers=auth("reviewer-acme")).json()
    last = got["feedback"][-1]
    assert last["verdict"] == "accepted" and last["by"] == "reviewer-acme"
    assert last["note"] == "judged in the browser test"
    assert last["judgments"] == [{"chunk_id": chunk, "label": "relevant"}]
    assert (ARTIFACTS / "review-queue.png").stat().st_size > 0

    # the judgment is a test case of `ragctx eval export --from-traces`: the server holds its
    # embedded store, so the export reads a copy of it (the server only reads it), and the
    # trace store itself
    judged_doc = next(
        c["doc_id"]
        for stage in ("hybrid", "dense", "bm25")
        for c in (got["stages"].get(stage) or {}).get("candidates") or []
        if c["chunk_id"] == chunk
    )
    settings = review.server.settings
    shutil.copytree(settings.qdrant_path, tmp_path / "qdrant")
    monkeypatch.chdir(tmp_path)  # no ragctx.toml of the repository
    monkeypatch.setenv("RAGCTX_QDRANT_PATH", str(tmp_path / "qdrant"))
    out = tmp_path / "from-traces"
    code = ragctx(
        monkeypatch,
        "eval", "export", "--from-traces", "--out", str(out), "--tenant", "acme",
        "--db", trace_db_url(settings), "--json",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["queries"] == 1
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert [(q["_id"], q["text"]) for q in queries] == [(review.acme_trace, got["query"])]
    qrels = (out / "qrels" / "test.tsv").read_text().splitlines()[1:]
    assert f"{review.acme_trace}\t{judged_doc}\t1" in qrels

    # the policy diff: check the trace in the queue, pick the candidate policy, compare
    browser.get(f"{base}/review/queue?show=all")
    _wait(browser, f"input.pick[value='{review.acme_trace}']").click()
    Select(browser.find_element(By.NAME, "candidate")).select_by_value("candidate")
    browser.find_element(By.ID, "diff-open").click()
    _wait(browser, "#summary")
    browser.save_screenshot(str(ARTIFACTS / "review-diff.png"))
    assert browser.find_element(By.ID, "sum-traces").text == "1"
    assert browser.find_element(By.ID, "sum-changed").text == "1"
    removed = browser.find_element(By.CSS_SELECTOR, "tr.trace-diff .removed").text
    assert "xss-widget-tokens" in removed and "excluded" in removed
    assert _console_errors(browser) == []

    # the quality page over real report history: the charts are images that load
    file_eval_runs(review.reports, models, tmp_path, name="toy")
    browser.find_element(By.ID, "nav-quality").click()
    chart = _wait(browser, "#history-chart")
    loaded = browser.execute_script(
        "return [...document.images].map(i => [i.id, i.complete && i.naturalWidth > 0])"
    )
    assert loaded == [["history-chart", True], ["failures-chart", True]]
    assert chart.size["width"] > 300
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history-table tr.run")) == 2
    browser.save_screenshot(str(ARTIFACTS / "review-quality.png"))
    assert _console_errors(browser) == []
