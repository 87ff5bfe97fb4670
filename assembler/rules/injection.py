"""Rule 4, injection screen: find chunks that look like instructions to the model.

Retrieved text is untrusted: a page can carry "ignore previous instructions", chat role markers
or text hidden from human readers. The screen is a set of narrow detectors, each guarded by a
cheap substring test so that clean text costs a few microseconds. It finds the common attacks;
it is no proof of safety, which is why every chunk is also rendered inside delimiters it cannot
forge (see ``assembler.render``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assembler.policy_schema import Injection
from assembler.untrusted import clean

# Zero-width and invisible format characters, bidirectional overrides, and Unicode "tag"
# characters (used to smuggle ASCII text that renders as nothing).
HIDDEN_CHARACTERS = re.compile(
    "[\u200b\u2060\ufeff\u180e\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)

_FILLER = (
    r"(?:all|any|the|your|my|of|previous|prior|above|earlier|preceding|system|original|"
    r"these|those|every|developer|safety)"
)


@dataclass(frozen=True, slots=True)
class _Detector:
    """A regex with a cheap guard: the regex can only match where one of its keywords occurs.

    ``after_whitespace`` keywords count only right after a whitespace character (the regex
    writes ``\\s`` before them), whatever that character is: a tab or a line break cannot slip
    past the guard.
    """

    name: str
    keywords: tuple[str, ...]
    regex: re.Pattern[str]  # searched in the lower-cased text
    after_whitespace: tuple[str, ...] = ()
    required: str = ""  # a string every match of the regex contains, if any

    def could_match(self, lowered: str) -> bool:
        """Whether the guard lets the regex run on ``lowered`` (never False where it matches)."""
        if self.required not in lowered:
            return False
        if any(map(lowered.__contains__, self.keywords)):  # one C loop over the keywords
            return True
        return any(_after_whitespace(lowered, word) for word in self.after_whitespace)


def _after_whitespace(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` right after a whitespace character."""
    start = text.find(word, 1)
    while start != -1:
        if text[start - 1].isspace():
            return True
        start = text.find(word, start + 1)
    return False


_DETECTORS = (
    _Detector(
        "override_instructions",
        ("ignore", "disregard", "forget", "override", "bypass"),
        re.compile(
            rf"\b(?:ignore|disregard|forget|override|bypass)\s+(?:{_FILLER}\s+){{0,4}}"
            r"(?:instructions?|prompts?|rules|directions|guidelines|guardrails)\b"
        ),
    ),
    _Detector(
        "exfiltration",
        ("prompt", "instructions", "context", "configuration"),
        re.compile(
            r"\b(?:reveal|print|output|show|repeat|leak|disclose|dump)\b(?:\s+\S+){0,6}?\s+"
            r"(?:(?:the\s+|your\s+)?system prompt|(?:your\s+)?hidden (?:configuration|instructions"
            r"|prompt)|your (?:instructions|prompt|context window|configuration)"
            r"|the (?:full )?contents of your context)"
        ),
    ),
    _Detector(
        "addresses_the_model",
        ("assistant", "llm", "language model", "chatbot"),
        re.compile(
            r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?"
            r"(?:ai|assistant|llm|language model|chatbot)\b"
        ),
        after_whitespace=("ai",),
    ),
    _Detector(
        "persona_switch",
        ("you are",),
        re.compile(
            r"\byou are (?:now )?(?:an? )?(?:unrestricted|jailbroken|dan\b|"
            r"in (?:developer|maintenance|god|admin) mode)"
        ),
    ),
    _Detector(
        "new_instructions",
        ("instructions",),
        re.compile(r"\b(?:new|updated|real|actual) (?:system )?instructions\s*:"),
        required=":",
    ),
    _Detector(
        "role_marker",
        ("system", "assistant", "developer", "<|", "[inst", "[/inst", "<<sys", "<</sys"),
        re.compile(
            r"(?m)^\s*(?:#{1,6}\s*)?(?:system|assistant|developer)\s*:"
            r"|<\|(?:im_start|im_end|system|assistant|user|endoftext)\|>|\[/?inst\]|<</?sys>>"
        ),
    ),
    _Detector(
        "hidden_css",
        # The property names: any whitespace may stand between a property and its colon.
        ("display", "visibility", "font-size", "opacity"),
        re.compile(
            r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d])"
            r"|opacity\s*:\s*0(?![.\d])"
        ),
        required=":",
    ),
)


def injection_signals(rule: Injection, text: str) -> tuple[str, ...]:
    """Name the detectors that fire on ``text``; empty when the text looks clean.

    Args:
        rule: The policy's ``injection`` section (its ``patterns`` add detectors).
        text: The chunk text, as retrieved.

    Returns:
        Detector names such as ``override_instructions`` or ``hidden_characters``, or
        ``pattern[i]`` for the policy's own patterns.
    """
    found: list[str] = []
    if not text.isascii():
        if HIDDEN_CHARACTERS.search(text) is not None:
            found.append("hidden_characters")
        # Screened as rendered (see assembler.untrusted): NFKC, format characters removed, so
        # zero-width characters inside words ("I\u200bgnore") and full-width letters hide
        # nothing from the detectors.
        text = clean(text)
    lowered = text.lower()
    for detector in _DETECTORS:
        if detector.could_match(lowered) and detector.regex.search(lowered) is not None:
            found.append(detector.name)
    for number, pattern in enumerate(rule.patterns):
        if re.search(pattern, text) is not None:
            found.append(f"pattern[{number}]")
    return tuple(found)
