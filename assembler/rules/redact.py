"""Redaction: what the model must not see even when the text is packed.

Matches of the policy's rules are replaced by typed placeholders (``[EMAIL]``, ``[PHONE]``,
``[SECRET]``, or a custom rule's ``[NAME]``) in every untrusted kind before anything is counted.
All patterns are RE2 (linear time). The built-in ones aim at what leaks in practice; they are
deliberately narrow (a date or an order number is not a phone number), and a policy adds its
own with ``redact.patterns``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from assembler.policy_schema import Redact
from core.linear_regex import LinearPattern, compile_linear

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# +1 415 555 0100, (415) 555-0100, 415-555-0100, +49 30 1234 5678; not 2026-11-18 or 10.5.3
PHONE = (
    r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?"
    r"\b"
)
SECRET = "|".join(
    (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}",  # OpenAI / Anthropic style
        r"\b[a-z]{2,12}_(?:live|test)_[A-Za-z0-9]{12,}",  # sk_live_..., acme_live_...
        r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
        r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
        r"\bxox[abpr]-[A-Za-z0-9-]{10,}",  # Slack tokens
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
        r"(?i)\bbearer [A-Za-z0-9._~+/-]{20,}=*",
        r"(?i)\b(?:api[_-]?key|secret|password|passwd|token)\b[\"']?\s*[:=]\s*[\"']?[^\s\"']{8,}",
    )
)


@dataclass(frozen=True, slots=True)
class Redactor:
    """The policy's redaction rules, compiled: ``(placeholder name, pattern)`` in order."""

    rules: tuple[tuple[str, LinearPattern], ...]

    @property
    def active(self) -> bool:
        """Whether any rule is on."""
        return bool(self.rules)

    def apply(self, text: str, counts: Counter[str]) -> str:
        """``text`` with every match replaced by its placeholder; ``counts`` gets the tallies."""
        for name, pattern in self.rules:
            text, replaced = pattern.subn(f"[{name}]", text)
            if replaced:
                counts[name] += replaced
        return text


@cache
def _builtin(pattern: str) -> LinearPattern:
    return compile_linear(pattern)


def redactor(rule: Redact) -> Redactor:
    """The redactor of a policy's ``redact`` section (secrets first: a key may hold an @)."""
    rules: list[tuple[str, LinearPattern]] = []
    if rule.secrets:
        rules.append(("SECRET", _builtin(SECRET)))
    if rule.emails:
        rules.append(("EMAIL", _builtin(EMAIL)))
    if rule.phones:
        rules.append(("PHONE", _builtin(PHONE)))
    rules += [(custom.name, custom.compiled) for custom in rule.patterns]
    return Redactor(tuple(rules))
