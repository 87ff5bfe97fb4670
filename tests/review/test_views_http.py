"""The review console's policy diff view and quality view over real HTTP (uvicorn on 127.0.0.1):
replays under a candidate policy, judged chunks gained and lost, the reviewer's own tenant only,
unknown and hostile input, and escaped trace text."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

from service.runtime import Models
from service.traces.diagnose import CATEGORIES
from tests.review.conftest import XSS, XSS_QUESTION, ReviewSetup, file_eval_runs
from tests.service.conftest import auth

XSS_DOC = "xss-widget-tokens"
HOSTILE_DATASET = "toy<img src=x onerror=alert(1)> $^{x}$"  # markup, and mathtext


def _field(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</', page, re.S)
    assert found is not None, f"no #{element_id} on the page"
    return found.group(1).strip()


def test_the_diff_shows_what_the_candidate_policy_packs_instead(review: ReviewSetup) -> None:
    with review.server.client() as c:
        trace = c.get(f"/v1/traces/{review.acme_trace}", headers=auth("reviewer-acme")).json()
        xss_chunks = [i["chunk_id"] for i in trace["pack"]["items"] if i["doc_id"] == XSS_DOC]
        assert xss_chunks, "the XSS document should be packed for its own question"
        judged = c.post(
            "/v1/feedback",
            json={
                "trace_id": review.acme_trace,
                "verdict": "accepted",
                "judgments": [{"chunk_id": xss_chunks[0], "label": "relevant"}],
            },
            headers=auth("reviewer-acme"),
        )
        assert judged.status_code == 201, judged.text
        before = len(c.get("/v1/traces", headers=auth("reviewer-acme")).json()["traces"])
    with review.reviewer() as c:
        form = c.get("/review/diff")
        diff = c.get("/review/diff", params={"candidate": "candidate", "trace": review.acme_trace})
        same = c.get("/review/diff", params={"candidate": "default", "show": "all"})
    assert form.status_code == 200 and '<option value="candidate"' in form.text
    assert diff.status_code == 200, diff.text
    page = diff.text
    assert _field(page, "sum-traces") == "1" and _field(page, "sum-changed") == "1"
    assert _field(page, "sum-judged") == "1"
    assert _field(page, "sum-relevant") == "0 gained, 1 lost"
    removed = page.split('class="removed"')[1]
    assert XSS_DOC in removed and xss_chunks[0] in removed and "(excluded" in removed
    assert "default@1 → candidate@1" in page
    # hostile trace text (the question, the removed chunk's text) is escaped, never markup
    assert "<script>alert" not in page and XSS not in page
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert html.escape(XSS_QUESTION, quote=False) in page.replace("&#34;", '"')
    assert "unsafe-inline" not in diff.headers["content-security-policy"]
    # the queue's traces (every acme trace) under the policy they were recorded with: unchanged,
    # and only acme's
    assert same.status_code == 200, same.text
    assert _field(same.text, "sum-changed") == "0" and int(_field(same.text, "sum-unchanged")) >= 1
    assert review.acme_trace in same.text and review.globex_trace not in same.text
    # replays are not recorded as traces
    assert review.server.runtime.traces is not None and review.server.runtime.traces.flush(10)
    with review.server.client() as c:
        after = len(c.get("/v1/traces", headers=auth("reviewer-acme")).json()["traces"])
    assert after == before


def test_the_diff_refuses_other_tenants_unknown_policies_and_too_many_traces(
    review: ReviewSetup,
) -> None:
    with review.reviewer() as c:
        other = c.get(
            "/review/diff", params={"candidate": "candidate", "trace": review.globex_trace}
        )
        unknown = c.get("/review/diff", params={"candidate": "no-such-policy"})
        hostile = c.get("/review/diff", params={"candidate": "<script>alert(1)</script>"})
        many = c.get(
            "/review/diff",
            params={"candidate": "default", "trace": [f"t{n}" for n in range(51)]},
        )
        bad_filter = c.get("/review/diff", params={"candidate": "default", "since": "soon"})
        odd_trace = c.get("/review/diff", params={"candidate": "default", "trace": "<b>x</b>"})
    with review.server.client(follow_redirects=False) as c:
        nobody = c.get("/review/diff", params={"candidate": "default"})
    with review.reviewer("reviewer-globex") as c:
        globex = c.get("/review/diff", params={"candidate": "default", "show": "all"})
    assert other.status_code == 404 and "How do I rotate API keys?" not in other.text
    assert unknown.status_code == 422
    assert "candidate: no policy &#39;no-such-policy&#39; is loaded" in unknown.text
    assert hostile.status_code == 422 and "<script>alert(1)" not in hostile.text
    assert many.status_code == 422 and "at most 50" in many.text
    assert bad_filter.status_code == 422 and "since &#39;soon&#39; is not a date" in bad_filter.text
    assert odd_trace.status_code == 404 and "<b>x</b>" not in odd_trace.text
    assert nobody.status_code == 303 and nobody.headers["location"] == "/review/login"
    assert globex.status_code == 200, globex.text
    assert review.globex_trace in globex.text and review.acme_trace not in globex.text


def test_the_quality_view_charts_real_report_history_and_the_tenants_failures(
    review: ReviewSetup, models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with review.reviewer() as c:
        empty = c.get("/review/quality")
    assert empty.status_code == 200, empty.text
    assert "No reports yet: run <code>ragctx eval DATASET_DIR</code>" in empty.text
    assert 'id="history-chart"' not in empty.text
    reports = file_eval_runs(review.reports, models, tmp_path, name=HOSTILE_DATASET)
    # judged traces: acme's misses a document (not_retrieved), globex's misses two
    with review.server.client() as c:
        for trace, key, missing in (
            (review.acme_trace, "reviewer-acme", ["no-such-doc"]),
            (review.globex_trace, "reviewer-globex", ["gone-1", "gone-2"]),
        ):
            r = c.post(
                "/v1/feedback",
                json={
                    "trace_id": trace,
                    "verdict": "rejected",
                    "judgments": [{"doc_id": d, "label": "missing"} for d in missing],
                },
                headers=auth(key),
            )
            assert r.status_code == 201, r.text
    with review.reviewer() as c:
        page = c.get("/review/quality")
        history_svg = c.get("/review/quality/history.svg")
        failures_svg = c.get("/review/quality/failures.svg")
    with review.reviewer("reviewer-globex") as c:
        globex = c.get("/review/quality")
    with review.server.client() as c:
        anonymous = c.get("/review/quality/history.svg")
    assert page.status_code == 200, page.text
    text = page.text
    # the history: both runs, their nDCG@10 per stage, the hostile dataset name escaped
    assert text.count('class="run"') == 2
    for report in reports:
        for stage in ("bm25", "dense", "hybrid"):
            assert f"{report.metric(stage, 'ndcg@10'):.4f}" in text
    assert html.escape(HOSTILE_DATASET) in text and HOSTILE_DATASET not in text
    assert 'src="/review/quality/history.svg"' in text and "<svg" not in text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    # the charts: SVG, text as text, escaped, series named
    assert history_svg.status_code == 200
    assert history_svg.headers["content-type"].startswith("image/svg+xml")
    svg = history_svg.text
    assert "<svg" in svg and "<script" not in svg and "<img" not in svg
    assert ">toy&lt;img src=x onerror=alert(1)&gt; $^{x}$: ndcg@10 per stage</text>" in svg
    assert all(f">{stage}</text>" in svg for stage in ("bm25", "dense", "hybrid"))
    assert "script-src" not in history_svg.headers["content-security-policy"]
    # the failures: acme's judged trace, one not_retrieved; nothing of globex's
    table = text.split('id="failures-table"')[1].split("</table>")[0]
    row = re.findall(r'<tr class="day">(.*?)</tr>', table, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in row]
    not_retrieved = 3 + list(CATEGORIES).index("not_retrieved")
    assert sum(int(c[not_retrieved]) for c in cells) == 1
    assert failures_svg.status_code == 200 and "acme default@1" in failures_svg.text
    assert "globex" not in failures_svg.text and "globex" not in table
    gtable = globex.text.split('id="failures-table"')[1].split("</table>")[0]
    gcells = [
        re.findall(r"<td>(.*?)</td>", r)
        for r in re.findall(r'<tr class="day">(.*?)</tr>', gtable, re.S)
    ]
    assert sum(int(c[not_retrieved]) for c in gcells) == 2
    assert anonymous.status_code == 401
    # without matplotlib (a service-only install) the charts say what to install
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with review.reviewer() as c:
        missing = c.get("/review/quality/history.svg")
    assert missing.status_code == 503 and "pip install 'ragctx[eval]'" in missing.text
