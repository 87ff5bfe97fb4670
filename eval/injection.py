"""How well the injection screen separates attacks from benign look-alikes, on a labelled set.

The set is JSON Lines, one ``{"text", "label", "group", "split"}`` row per line (``label``:
``injection`` or ``benign``; ``split``: ``dev`` or ``test``, assigned per ``group`` so that no
family of texts is in both). ``data/injection/build.py`` writes the project's own set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError

__all__ = [
    "DEFAULT_DATA",
    "InjectionResult",
    "LabelledText",
    "evaluate_screen",
    "load_labelled",
]

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "injection" / "labelled.jsonl"
LABELS = ("injection", "benign")
SPLITS = ("dev", "test")


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One row of the labelled set."""

    text: str
    label: str
    group: str
    split: str


@dataclass(frozen=True, slots=True)
class InjectionResult:
    """Precision, recall and F1 of the screen on one split, with the rows it got wrong."""

    split: str
    data: str
    tp: int
    fp: int
    fn: int
    tn: int
    missed: list[LabelledText] = field(default_factory=list)  # injections it let through
    false_alarms: list[LabelledText] = field(default_factory=list)  # benign rows it flagged

    @property
    def precision(self) -> float:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        positives = self.tp + self.fn
        return self.tp / positives if positives else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The figures, for JSON and the history (no texts)."""
        return {
            "split": self.split,
            "data": self.data,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def load_labelled(path: Path, *, split: str | None = None) -> list[LabelledText]:
    """Read the labelled set, optionally one split of it.

    Raises:
        InvalidInputError: The file is missing or unreadable, a line is not a JSON object with
            the four fields, a label or split is unknown, a group is in both splits, or the
            chosen split has no injection or no benign row.
    """
    if split is not None and split not in SPLITS:
        raise InvalidInputError(
            f"unknown split {split!r}: use one of {', '.join(SPLITS)}", field="split"
        )
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidInputError(
            f"no labelled injection data at {path}: pass --data FILE, or write the project's "
            "set with `python data/injection/build.py`",
            field="data",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(
            f"cannot read the labelled injection data {path}: {err}", field="data"
        ) from None
    rows: list[LabelledText] = []
    splits_of: dict[str, set[str]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = _parse_row(path, number, line)
        splits_of.setdefault(row.group, set()).add(row.split)
        rows.append(row)
    leaked = sorted(group for group, seen in splits_of.items() if len(seen) > 1)
    if leaked:
        raise InvalidInputError(
            f"{path}: group(s) {', '.join(leaked)} are in both splits; split by group so "
            "that tuning on dev says something about test",
            field="data",
        )
    chosen = [row for row in rows if split is None or row.split == split]
    for label in LABELS:
        if not any(row.label == label for row in chosen):
            raise InvalidInputError(
                f"{path}: no {label!r} row in split {split or 'any'}; the set needs both labels",
                field="data",
            )
    return chosen


def _parse_row(path: Path, number: int, line: str) -> LabelledText:
    where = f"{path} line {number}"
    try:
        raw = json.loads(line)
    except ValueError as err:
        raise InvalidInputError(f"{where} is not JSON: {err}", field="data") from None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where} is not a JSON object", field="data")
    values: dict[str, str] = {}
    for key in ("text", "label", "group", "split"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(
                f"{where}: field {key!r} must be a non-empty string, got {value!r}",
                field="data",
            )
        values[key] = value
    if values["label"] not in LABELS:
        raise InvalidInputError(
            f"{where}: label {values['label']!r} is not one of {', '.join(LABELS)}", field="data"
        )
    if values["split"] not in SPLITS:
        raise InvalidInputError(
            f"{where}: split {values['split']!r} is not one of {', '.join(SPLITS)}", field="data"
        )
    return LabelledText(**values)


def evaluate_screen(
    rows: list[LabelledText],
    flags: Callable[[str], bool],
    *,
    split: str,
    data: str,
) -> InjectionResult:
    """Run ``flags`` (True: the screen flags the text) over ``rows`` and count."""
    tp = fp = fn = tn = 0
    missed: list[LabelledText] = []
    false_alarms: list[LabelledText] = []
    for row in rows:
        flagged = flags(row.text)
        if row.label == "injection":
            if flagged:
                tp += 1
            else:
                fn += 1
                missed.append(row)
        elif flagged:
            fp += 1
            false_alarms.append(row)
        else:
            tn += 1
    return InjectionResult(
        split=split,
        data=data,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        missed=missed,
        false_alarms=false_alarms,
    )
