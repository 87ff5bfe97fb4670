"""Counting a whole prompt exactly as rendered, chat framing included.

The rule, per format (``PromptFormat``), for both shipped encodings (cl100k_base, o200k_base):

- ``openai`` and ``anthropic``: every message costs 3 tokens of framing, plus the tokens of its
  role and content, plus its name's tokens and 1 more when it has a name; the prompt costs 3
  more to prime the reply. That is the OpenAI cookbook's rule ("How to count tokens with
  tiktoken", gpt-3.5-turbo-0125 to gpt-4o), which reproduces the API's own counts. A tool call
  adds the tokens of its id, name and arguments, a tool result those of its ``tool_call_id``:
  the cookbook gives no rule for them, so that part is this project's estimate. Anthropic
  publishes no tokenizer for current models: its count is the same rule over the same messages,
  an estimate.
- ``text``: the rendered text, counted as one string: exact.

Counts are not additive over concatenation, so a prompt is counted once, as rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assembler.prompt import render
from assembler.prompt.types import Message, PromptFormat
from assembler.tokens import TokenCounter


@dataclass(frozen=True, slots=True)
class ChatFraming:
    """Tokens a chat API spends around messages (the cookbook's ``tokens_per_message`` ...)."""

    per_message: int = 3
    per_name: int = 1
    priming: int = 3

    def describe(self, fmt: PromptFormat) -> str:
        """The rule, in words, as the pack reports it."""
        if fmt is PromptFormat.TEXT:
            return "text: the rendered prompt counted as one string"
        estimate = "; an estimate for Anthropic models" if fmt is PromptFormat.ANTHROPIC else ""
        return (
            f"{fmt.value}: {self.per_message} tokens a message + {self.per_name} a name + "
            f"{self.priming} to prime the reply (OpenAI cookbook){estimate}"
        )


OPENAI_FRAMING = ChatFraming()


def message_tokens(message: Message, counter: TokenCounter, framing: ChatFraming) -> int:
    """One message's tokens under the chat rule: framing, role, content, name, tool fields."""
    tokens = framing.per_message + counter.count(message.role.value)
    tokens += counter.count(message.content)
    if message.name:
        tokens += counter.count(message.name) + framing.per_name
    if message.tool_call_id:
        tokens += counter.count(message.tool_call_id)
    for call in message.tool_calls:
        tokens += counter.count(call.id) + counter.count(call.name) + counter.count(call.arguments)
    return tokens


def prompt_tokens(
    messages: Sequence[Message],
    counter: TokenCounter,
    fmt: PromptFormat,
    framing: ChatFraming = OPENAI_FRAMING,
) -> int:
    """The whole prompt's tokens in ``fmt``: what the budget holds."""
    if fmt is PromptFormat.TEXT:
        return counter.count(render.to_text(messages))
    return sum(message_tokens(m, counter, framing) for m in messages) + framing.priming
