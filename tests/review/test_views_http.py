"""The review console's policy diff view and quality view over real HTTP (uvicorn on 127.0.0.1):
replays under a candidate policy, judged chunks gained and lost, the reviewer's own tenant only,
unknown and hostile input, and escaped trace text."""

from __future__ import annotations

import html
import re

from tests.review.conftest import XSS, XSS_QUESTION, ReviewSetup
from tests.service.conftest import auth

XSS_DOC = "xss-widget-tokens"


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
    assert nobody.status_code == 303 and nobody.headers["location"] == "/review/login"
    assert globex.status_code == 200, globex.text
    assert review.globex_trace in globex.text and review.acme_trace not in globex.text
