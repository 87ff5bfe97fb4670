"""Rule 4, injection screen: find chunks that look like instructions to the model.

Retrieved text is untrusted: a page can carry "ignore previous instructions", chat role markers
or text hidden from human readers. The screen is a set of narrow detectors, each guarded by a
cheap substring test so that clean text costs a few microseconds. It finds the common attacks;
it is no proof of safety, which is why every chunk is also rendered inside delimiters it cannot
forge (see ``assembler.render``).
"""

from __future__ import annotations

from dataclasses import dataclass

import re2

from assembler.policy_schema import Injection
from assembler.untrusted import clean

# Zero-width and invisible format characters, bidirectional overrides, and Unicode "tag"
# characters (used to smuggle ASCII text that renders as nothing).
HIDDEN_CHARACTERS = re2.compile(
    "[\u200b\u2060\ufeff\u180e\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)

# The regexes are RE2 (google-re2): linear time in the text, whatever the text. RE2's ``\s``
# and ``\b`` are ASCII; the screened text is NFKC-normalised first (see ``assembler.untrusted``),
# which turns no-break and em spaces into plain spaces.
_FILLER = (
    r"(?:all|any|the|your|my|of|previous|prior|above|earlier|preceding|system|original|"
    r"these|those|every|developer|safety|initial|given|current|existing)"
)
_MODEL = r"(?:ai|assistant|llm|language model|chatbot|chatgpt|gpt|claude)s?"


@dataclass(frozen=True, slots=True)
class _Detector:
    """A regex with a cheap guard: the regex can only match where one of its keywords occurs.

    ``word_start`` keywords count only at the start of a word: at the start of the text or
    after a character that is not an ASCII letter, digit or underscore (RE2's ``\\b`` is
    ASCII), so no whitespace or punctuation before them can slip past the guard.
    """

    name: str
    keywords: tuple[str, ...]
    regex: re2._Regexp  # searched in the lower-cased text
    word_start: tuple[str, ...] = ()
    required: str = ""  # a string every match of the regex contains, if any

    def could_match(self, lowered: str) -> bool:
        """Whether the guard lets the regex run on ``lowered`` (never False where it matches)."""
        if self.required not in lowered:
            return False
        if any(map(lowered.__contains__, self.keywords)):  # one C loop over the keywords
            return True
        return any(_word_start(lowered, word) for word in self.word_start)


def _word_start(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` at the start of a word (ASCII word characters)."""
    start = text.find(word)
    while start != -1:
        before = text[start - 1] if start else " "
        if not (before.isascii() and (before.isalnum() or before == "_")):
            return True
        start = text.find(word, start + 1)
    return False


_OVERRIDE_OBJECT = (
    r"(?:instructions?|prompts?|rules|directions|guidelines|guardrails|everything|"
    r"what you (?:were|have been) (?:told|given))"
)

_DETECTORS = (
    _Detector(
        "override_instructions",
        (
            "ignore",
            "disregard",
            "forget",
            "override",
            "bypass",
            "pay no attention",
            "not follow",
            "'t follow",
            "stop follow",
            "longer follow",
            "never mind",
            "nevermind",
        ),
        re2.compile(
            # "override rules" and "bypass rules" are also noun phrases of ordinary docs: those
            # two verbs need a word such as "your" or "all" before the object.
            rf"\b(?:ignore|disregard|forget|pay no attention to|never ?mind)\s+"
            rf"(?:{_FILLER}\s+){{0,4}}{_OVERRIDE_OBJECT}"
            rf"|\b(?:override|bypass)\s+(?:{_FILLER}\s+){{1,4}}{_OVERRIDE_OBJECT}"
            rf"|\b(?:do not|don't|stop|no longer) follow(?:ing)?\s+(?:{_FILLER}\s+){{0,4}}"
            r"(?:instructions?|prompts?|rules|guidelines|guardrails)(?:\s+\S+){0,4}?\s+"
            r"(?:any more|anymore|you were given)"
            rf"|\b(?:do not|don't|stop|no longer) follow(?:ing)?\s+your\s+(?:{_FILLER}\s+){{0,3}}"
            r"(?:instructions?|prompts?|rules|guidelines|guardrails)"
            r"|\b(?:stop following|ignore|forget) the (?:rules|instructions) you were given"
        ),
    ),
    _Detector(
        "override_other_languages",
        (
            "ignor",
            "vergiss",
            "missacht",
            "oubli",
            "ne tiens pas compte",
            "ne tenez pas compte",
            "olvida",
            "no hagas caso",
            "esque",
            "negeer",
            "игнорир",
            "забудь",
            "忽略",
            "无视",
            "無視",
        ),
        re2.compile(
            # de, fr, es, it, pt, nl, ru: the verb, at most four words, the word "instructions"
            r"(?:ignorier|vergiss|missacht)\S*\s+(?:\S+\s+){0,4}?(?:anweisungen|instruktionen"
            r"|vorgaben|regeln)"
            # fr "ignore" is also English: French needs an article before the noun
            r"|(?:ignore[sz]?|oublie[sz]?|ne (?:tiens|tenez) pas compte)\s+(?:\S+\s+){0,3}?"
            r"(?:les|des|vos|tes|mes) (?:\S+\s+){0,2}?(?:instructions|consignes)"
            r"|(?:ignora|olvida|no hagas caso)\S*\s+(?:\S+\s+){0,4}?(?:instrucciones|indicaciones"
            r"|istruzioni)"
            r"|(?:ignore|esque[cç]a)\S*\s+(?:\S+\s+){0,4}?instruções"
            r"|negeer\s+(?:\S+\s+){0,4}?instructies"
            r"|(?:игнорируй|игнорируйте|забудь)\S*\s+(?:\S+\s+){0,4}?(?:инструкции|указания)"
            # zh, ja: no spaces; a few characters between verb and noun
            r"|(?:忽略|无视).{0,12}(?:指令|指示|说明|提示)|(?:指示|命令).{0,12}無視"
        ),
    ),
    _Detector(
        "exfiltration",
        (
            "prompt",
            "instructions",
            "context",
            "configuration",
            "text above",
            "words above",
            "content above",
            "system message",
        ),
        re2.compile(
            r"\b(?:reveal|print|output|show|repeat|leak|disclose|dump|copy|paste|write out"
            r"|tell me)\b(?:\s+\S+){0,6}?\s+"
            r"(?:(?:the\s+|your\s+)?system (?:prompt|message)|(?:your\s+)?hidden (?:configuration"
            r"|instructions|prompt)|your (?:instructions|prompt|context window|configuration"
            r"|system message|initial instructions)|the (?:full )?contents of your context"
            r"|the (?:text|words|content) above|the instructions you were given"
            r"|everything in your context)"
            r"|\bwhat (?:are|were) your (?:initial |original |first |hidden |system )?"
            r"(?:instructions|prompt)"
        ),
    ),
    _Detector(
        "addresses_the_model",
        (
            "assistant",
            "llm",
            "language model",
            "chatbot",
            "gpt",
            "claude",
        ),
        re2.compile(
            rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
            rf"{_MODEL}\b"
            rf"|\b(?:attention|dear|hey|hello|hi)\s*,?\s+(?:the\s+)?{_MODEL}\b"
            rf"|\b{_MODEL}\s+(?:reading|processing|parsing|summari[sz]ing)\s+this\b"
            rf"|\bif you are an?\s+(?:ai\s+)?{_MODEL}\b"
            rf"|\bto (?:any|all|every)\s+{_MODEL}\b"
            rf"|\b(?:ai|llm)\s+(?:agents?|assistants?|models?)\s*:"
        ),
        word_start=("ai",),
    ),
    _Detector(
        "persona_switch",
        (
            "you are",
            "pretend",
            "act as",
            "god mode",
            "dan mode",
            "jailbreak mode",
            "unrestricted mode",
            "roleplay",
            "role-play",
            "jailbr",
            "without",
            "with no",
            "has no",
        ),
        re2.compile(
            r"\byou are (?:now )?(?:an? )?(?:unrestricted|jailbroken|dan\b|"
            r"in (?:developer|maintenance|god|admin) mode)"
            r"|\b(?:pretend|imagine) (?:that )?you are\b|\bpretend to be\b"
            rf"|\bact as (?:an? |my )?(?:\S+\s+){{0,3}}?{_MODEL}\b"
            r"|\b(?:enter|activate|enable|switch to) (?:god|dan|jailbreak|unrestricted) mode"
            r"|\brole-?play as\b|\bjailbroken\b"
            rf"|\b{_MODEL}\s+(?:\S+\s+){{0,2}}?(?:without|with no|that has no|has no)\s+"
            r"(?:\S+\s+)?(?:restrictions|rules|limits|filters|polic(?:y|ies)|guidelines)"
        ),
    ),
    _Detector(
        "new_instructions",
        ("instructions", "override"),
        re2.compile(
            r"\b(?:new|updated|real|actual|revised) (?:system )?instructions(?:\s+\S+){0,4}?\s*:"
            r"|\b(?:admin|system|developer|operator) override\s*:"
        ),
        required=":",
    ),
    _Detector(
        "role_marker",
        (
            "system",
            "assistant",
            "developer",
            "<|",
            "[inst",
            "[/inst",
            "<<sys",
            "<</sys",
            "_of_turn>",
        ),
        re2.compile(
            r"(?m)^\s*(?:#{1,6}\s*)?(?:system|assistant|developer)\s*:"
            r"|(?m)^\s*#{1,6}\s*system prompt\s*:"
            r"|(?m)^\s*[\[<](?:system|assistant|developer)[\]>]"
            r"|<\|[a-z_]{2,20}\|>|\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>"
        ),
    ),
    _Detector(
        "instruction_header",
        ("instruction",),
        # "### Instruction:", the turn header of Alpaca-style prompts
        re2.compile(r"(?m)^\s*#{1,6}\s*instruction\s*:"),
        required="#",
    ),
    _Detector(
        "image_exfiltration",
        ("](",),
        # A Markdown image whose address carries a query: rendering it sends the query out.
        re2.compile(r"!\[[^\]\n]{0,200}\]\(\s*(?:https?:)?//[^)\s?]{1,300}\?[^)\s]{0,500}="),
        required="![",
    ),
    _Detector(
        "tool_call",
        ("tool", "function"),
        re2.compile(
            r"\b(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?[a-z0-9]+_[a-z0-9_]+\s+"
            r"(?:tool|function)\b"
        ),
        required="_",
    ),
    _Detector(
        "hidden_css",
        # Words every match holds ("visibility" alone is common in docs: "visibility timeout");
        # any whitespace may stand between a property and its colon, so none of it is here.
        ("none", "hidden", "font-size", "opacity"),
        re2.compile(
            r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:[^.\d]|$)"
            r"|opacity\s*:\s*0(?:[^.\d]|$)"
        ),
        required=":",
    ),
)

# "i g n o r e  a l l ...": letters spelled apart. A verb spelled so is the guard; then the
# text is read with its whitespace removed.
_SPACED_VERBS = (
    "i g n o r e",
    "d i s r e g a r d",
    "f o r g e t",
    "o v e r r i d e",
    "b y p a s s",
)
_SPACED_PHRASE = re2.compile(
    r"(?:ignore|disregard|forget|override|bypass)[a-z]{0,24}(?:instructions?|prompts?|rules)"
)

# One pass over the text for every detector's keywords: clean text (no keyword at all) is
# screened by a single RE2 scan instead of one substring search per keyword.
_ANY_KEYWORD = re2.compile(
    "|".join(
        [re2.escape(k) for d in _DETECTORS for k in d.keywords]
        + [r"\b" + re2.escape(w) for d in _DETECTORS for w in d.word_start]
        + [re2.escape(v) for v in _SPACED_VERBS]
    )
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
    if _ANY_KEYWORD.search(lowered) is None:
        return (*found, *_policy_signals(rule, text))
    for detector in _DETECTORS:
        if detector.could_match(lowered) and detector.regex.search(lowered) is not None:
            found.append(detector.name)
    if any(map(lowered.__contains__, _SPACED_VERBS)):
        squeezed = "".join(lowered.split())
        if _SPACED_PHRASE.search(squeezed) is not None:
            found.append("spaced_letters")
    return (*found, *_policy_signals(rule, text))


def _policy_signals(rule: Injection, text: str) -> list[str]:
    """``pattern[i]`` for each of the policy's own patterns that matches ``text``."""
    found: list[str] = []
    for number, pattern in enumerate(rule.compiled_patterns):
        if pattern.search(text) is not None:
            found.append(f"pattern[{number}]")
    return found
