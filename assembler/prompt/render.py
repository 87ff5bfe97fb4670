"""Rendering the whole prompt: caller items as delimited blocks, messages in each format.

Caller items of untrusted kinds are rendered like retrieved chunks: normalised, inside
delimiters their text cannot forge (``<memory id="...">`` ... ``</memory>``), see
``assembler.untrusted``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assembler.prompt.types import Message, Role
from assembler.render import markdown_fence
from assembler.types import CitationFormat, ItemKind
from assembler.untrusted import clean, safe_xml
from core.types import rendered_body

TEXT_LABELS = {
    Role.SYSTEM: "System",
    Role.USER: "User",
    Role.ASSISTANT: "Assistant",
    Role.TOOL: "Tool",
}


def _attribute(value: str) -> str:
    value = " ".join(clean(value).split())
    return safe_xml(value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


def item_block(
    kind: ItemKind,
    item_id: str,
    text: str,
    *,
    fmt: CitationFormat,
    trusted: bool,
    attributes: Sequence[tuple[str, str]] = (),
) -> str:
    """One caller item as it appears in the prompt, ending with a newline.

    XML: ``<memory id="fact-1" updated="2026-10-01">text</memory>``; markdown: a header line
    and a fence longer than any backtick run in the text. Untrusted text is escaped (the
    delimiters' look-alikes); trusted text is left as written.
    """
    shown = [("id", item_id), *((key, value) for key, value in attributes if value)]
    if fmt is CitationFormat.XML:
        body = rendered_body(text if trusted else safe_xml(text))
        head = " ".join(f'{key}="{_attribute(value)}"' for key, value in shown)
        return f"<{kind.value} {head}>\n{body}</{kind.value}>\n"
    body = rendered_body(text if trusted else clean(text))
    facts = " · ".join(f"{key}: {' '.join(clean(value).split())}" for key, value in shown)
    fence = markdown_fence(body)
    return f"{kind.value} · {facts}\n{fence}\n{body}{fence}\n"


def to_openai(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages in OpenAI chat form: ``{role, content[, name, tool_calls, tool_call_id]}``."""
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role.value, "content": message.content}
        if message.name:
            entry["name"] = message.name
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id:
            entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"arguments": text}  # Anthropic wants an object; keep the text as given


def to_anthropic(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The messages in Anthropic form: the system text apart, then user/assistant messages.

    Tool calls become ``tool_use`` blocks, tool results ``tool_result`` blocks in a user
    message; consecutive messages of one role are merged into one with several blocks.
    """
    system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM)
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        blocks: list[dict[str, Any]] = []
        if message.role is Role.TOOL:
            role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        else:
            role = message.role.value
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c.arguments)}
                for c in message.tool_calls
            ]
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _text_block(message: Message) -> str:
    label = TEXT_LABELS[message.role]
    if message.name:
        label += f" ({message.name})"
    if message.role is Role.TOOL and message.tool_call_id:
        label += f" [result of {message.tool_call_id}]"
    lines = [f"{label}:", message.content]
    lines += [f"[tool call {c.id}: {c.name}({c.arguments})]" for c in message.tool_calls]
    return "\n".join(line for line in lines if line) + "\n"


def to_text(messages: Sequence[Message]) -> str:
    """The messages as one plain text: each under its role's label, a blank line between."""
    return "\n".join(_text_block(message) for message in messages)
