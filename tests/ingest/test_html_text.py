"""The markdownify rendering keeps what the chunker and the evidence need: plain inline text
(no Markdown escapes, no link targets), ``#`` headings, tight lists and ``a | b`` table rows."""

from __future__ import annotations

from ingest.html_text import html_to_text


def test_inline_markup_is_plain_text_without_escapes() -> None:
    page = html_to_text(
        "<h3>Deep <a href='https://x.test'>link</a></h3>"
        "<p>Run <code>ragctx_sync --all*</code> <b>now</b> # not a heading</p>"
    )
    assert page.text == "### Deep link\n\nRun ragctx_sync --all* now # not a heading"


def test_lists_tables_and_blocks_keep_their_shape() -> None:
    page = html_to_text(
        "<nav>Menu</nav><ul><li>x<ul><li>y</li></ul></li><li>z</li></ul><hr>"
        "<ol start=3><li>c</li><li>d</li></ol>"
        "<table><tr><th>A</th><th>B</th></tr><tr><td>1<br>one</td><td><i>2</i></td></tr></table>"
        "<pre>  code\n    indented</pre><blockquote>Quoted</blockquote>"
    )
    assert page.text == (
        "Menu\n\n- x\n  - y\n- z\n\n3. c\n4. d\n\nA | B\n1 one | 2\n\n"
        "```\n  code\n    indented\n```\n\nQuoted"
    )
