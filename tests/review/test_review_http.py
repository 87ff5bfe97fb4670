"""The review console over real HTTP: reviewer keys see their tenant only and nothing but traces,
the login cookie, every trace field escaped under a strict CSP, judgments reaching the store, and
bad input answered with a message naming it."""

from __future__ import annotations

import html

from tests.review.conftest import XSS, XSS_QUESTION, ReviewSetup
from tests.service.conftest import auth, key_of


def test_a_reviewer_key_reads_and_judges_its_tenant_only_and_nothing_else(
    review: ReviewSetup,
) -> None:
    with review.server.client() as c:
        listed = c.get("/v1/traces", headers=auth("reviewer-acme")).json()["traces"]
        own = c.get(f"/v1/traces/{review.acme_trace}", headers=auth("reviewer-acme"))
        other = c.get(f"/v1/traces/{review.globex_trace}", headers=auth("reviewer-acme"))
        judge_other = c.post(
            "/v1/feedback",
            json={"trace_id": review.globex_trace, "verdict": "rejected"},
            headers=auth("reviewer-acme"),
        )
        context = c.post("/v1/context", json={"query": "keys"}, headers=auth("reviewer-acme"))
        admin = c.post(
            "/v1/admin/ingest",
            json={"path": "data/docs/acme", "collection": "docs"},
            headers=auth("reviewer-acme"),
        )
        mcp = c.post("/mcp", json={}, headers=auth("reviewer-acme"))
    ids = [t["id"] for t in listed]
    assert review.acme_trace in ids and review.globex_trace not in ids
    assert own.status_code == 200 and other.status_code == 404
    assert judge_other.status_code == 404
    assert context.status_code == 403 and "reviewer key" in context.json()["error"]["message"]
    assert admin.status_code == 403 and mcp.status_code == 403
    # the console: the other tenant's trace is not there either
    with review.reviewer("reviewer-acme") as c:
        page = c.get(f"/review/traces/{review.globex_trace}")
        queue = c.get("/review/queue", params={"show": "all"})
    assert page.status_code == 404
    assert review.globex_trace not in queue.text and review.acme_trace in queue.text
    with review.reviewer("reviewer-globex") as c:
        queue = c.get("/review/queue", params={"show": "all"})
    assert review.globex_trace in queue.text and review.acme_trace not in queue.text


def test_login_takes_reviewer_keys_only_and_sets_a_strict_cookie(review: ReviewSetup) -> None:
    with review.server.client(follow_redirects=False) as c:
        nobody = c.get("/review/queue")
        unknown = c.post("/review/login", data={"key": "no-such-key"})
        reader = c.post("/review/login", data={"key": key_of("acme-eng")})
        operator = c.post("/review/login", data={"key": key_of("operator")})
        empty = c.post("/review/login", data={})
        forged = c.post(
            "/review/login",
            data={"key": key_of("reviewer-acme")},
            headers={"Origin": "https://evil.example"},
        )
        ok = c.post("/review/login", data={"key": key_of("reviewer-acme")})
    assert nobody.status_code == 303 and nobody.headers["location"] == "/review/login"
    assert unknown.status_code == 401 and "reviewer key" in unknown.text
    assert reader.status_code == 403 and "not a reviewer key" in reader.text
    assert operator.status_code == 403 and empty.status_code == 401
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    assert ok.status_code == 303 and ok.headers["location"] == "/review/queue"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    assert "secure" not in cookie  # plain http on 127.0.0.1; https gets Secure
    # a cookie holding a non-reviewer key opens nothing
    with review.server.client(follow_redirects=False) as c:
        c.cookies.set("ragctx_review", key_of("acme-eng"))
        assert c.get("/review/queue").status_code == 303


def test_an_xss_payload_in_a_chunk_and_in_the_question_renders_escaped(
    review: ReviewSetup,
) -> None:
    with review.reviewer() as c:
        page = c.get(f"/review/traces/{review.acme_trace}")
        queue = c.get("/review/queue", params={"show": "all"})
    assert page.status_code == 200, page.text
    for response in (page, queue):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "<script>alert" not in response.text and "onerror=" not in response.text.replace(
            "onerror=&#34;", ""
        )
        assert html.escape(XSS_QUESTION, quote=False) in response.text.replace("&#34;", '"')
    # the document's text, as the index holds it, is on the page, escaped
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page.text
    assert XSS not in page.text
    # the only scripts are the console's own file
    assert page.text.count("<script") == 1 and 'src="/review/static/review.js"' in page.text


def test_a_judgment_from_the_form_reaches_the_trace_store(review: ReviewSetup) -> None:
    trace = review.acme_trace
    with review.server.client() as c:
        stored = c.get(f"/v1/traces/{trace}", headers=auth("acme-eng")).json()
    chunk = stored["pack"]["items"][0]["chunk_id"] if stored["pack"]["items"] else None
    chunk = chunk or stored["stages"]["hybrid"]["candidates"][0]["chunk_id"]
    with review.reviewer() as c:
        saved = c.post(
            f"/review/traces/{trace}/feedback",
            data={
                f"judge:{chunk}": "relevant",
                "verdict": "edited",
                "missing": ["acme-faq, faq-003", "xss-widget-tokens"],
                "note": "needs the <b>FAQ</b>",
            },
        )
        shown = c.get(saved.headers["location"])
        page = c.get(f"/review/traces/{trace}")
    assert saved.status_code == 303, saved.text
    assert "Judgment" in shown.text and "needs the &lt;b&gt;FAQ&lt;/b&gt;" in shown.text
    with review.server.client() as c:
        got = c.get(f"/v1/traces/{trace}", headers=auth("reviewer-acme")).json()
    last = got["feedback"][-1]
    assert last["verdict"] == "edited" and last["by"] == "reviewer-acme"
    assert last["note"] == "needs the <b>FAQ</b>"
    assert {"chunk_id": chunk, "label": "relevant"} in last["judgments"]
    assert {"doc_id": "faq-003", "label": "missing"} in last["judgments"]
    assert {"doc_id": "xss-widget-tokens", "label": "missing"} in last["judgments"]
    # the missing-document fields offer the tenant's doc ids, and no other tenant's
    assert '<option value="xss-widget-tokens">' in page.text
    assert '<option value="faq-003">' in page.text
    assert "globex" not in page.text.split('<datalist id="doc-ids">')[1].split("</datalist>")[0]


def test_bad_judgments_and_filters_are_refused_with_the_field_named(review: ReviewSetup) -> None:
    trace = review.acme_trace
    with review.reviewer() as c:
        before = len(c.get(f"/v1/traces/{trace}", headers=auth("reviewer-acme")).json()["feedback"])
        no_verdict = c.post(f"/review/traces/{trace}/feedback", data={"note": "x"})
        bad_verdict = c.post(f"/review/traces/{trace}/feedback", data={"verdict": "maybe"})
        bad_label = c.post(
            f"/review/traces/{trace}/feedback", data={"verdict": "accepted", "judge:x": "great"}
        )
        stranger = c.post(
            f"/review/traces/{trace}/feedback",
            data={"verdict": "accepted", "judge:not-a-candidate": "relevant"},
        )
        other = c.post(
            f"/review/traces/{review.globex_trace}/feedback", data={"verdict": "rejected"}
        )
        forged = c.post(
            f"/review/traces/{trace}/feedback",
            data={"verdict": "rejected"},
            headers={"Origin": "http://evil.example"},
        )
        odd_id = c.get("/review/traces/%3Cscript%3Ex")
        huge_key = c.post("/review/login", data={"key": "k" * 5000})
        logout_forged = c.post("/review/logout", headers={"Origin": "http://evil.example"})
        since = c.get("/review/queue", params={"since": "yesterday"})
        verdict = c.get("/review/queue", params={"verdict": "<script>"})
        after = len(c.get(f"/v1/traces/{trace}", headers=auth("reviewer-acme")).json()["feedback"])
    assert no_verdict.status_code == 422 and "verdict" in no_verdict.text
    assert bad_verdict.status_code == 422 and "verdict" in bad_verdict.text
    assert bad_label.status_code == 422 and "label" in bad_label.text
    assert stranger.status_code == 422 and "not a candidate" in stranger.text
    assert other.status_code == 404 and forged.status_code == 403
    assert since.status_code == 422 and "since &#39;yesterday&#39; is not a date" in since.text
    assert verdict.status_code == 422 and "<script>" not in verdict.text
    assert after == before  # nothing refused was kept
    assert odd_id.status_code == 404 and "<script>" not in odd_id.text
    assert huge_key.status_code == 422 and logout_forged.status_code == 403


def test_the_trace_page_shows_the_conversation_and_every_parts_fate_escaped(
    review: ReviewSetup,
) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    body = {
        "messages": [
            {"role": "system", "content": "Answer from the evidence."},
            {"role": "user", "content": "how do I rotate keys?"},
            {"role": "assistant", "content": f"Earlier answer {hostile}"},
            {"role": "user", "content": "and the grace period?"},
        ],
        "items": [{"kind": "memory", "id": "m1", "text": f"remembered {hostile}"}],
        "budget_tokens": 800,
    }
    with review.server.client() as c:
        r = c.post("/v1/context", json=body, headers=auth("acme-support"))
    assert r.status_code == 200, r.text
    trace_id = r.json()["trace"]["trace_id"]
    runtime = review.server.runtime
    assert runtime.traces is not None and runtime.traces.flush(10)
    with review.reviewer() as c:
        page = c.get(f"/review/traces/{trace_id}")
    assert page.status_code == 200, page.text
    assert 'id="prompt"' in page.text and "and the grace period?" in page.text
    assert "Answer from the evidence." in page.text and "memory:m1" in page.text
    assert hostile not in page.text and "&lt;img src=x" in page.text
