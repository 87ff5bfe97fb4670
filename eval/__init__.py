"""Quality reports: evaluate retrieval stage by stage on BEIR data, track it, gate releases.

Entry points: :func:`run` (one evaluation, an :class:`EvalReport`) and :func:`gate` (a run
against a baseline, with a paired significance test). ``load_dataset`` reads a BEIR folder;
``subset`` cuts a small fixed one for CI; ``write_run`` files a report into the reports folder.
"""

from __future__ import annotations

from eval.attribution import Attribution, Outcome
from eval.datasets import EvalDataset, load_dataset, subset
from eval.gate import GateCheck, GateResult, gate
from eval.history import RunFiles, latest_run, write_run
from eval.judge import JudgeParams
from eval.rankings import DocScore
from eval.report import EvalReport, StageReport, load_report
from eval.runner import ContextScorer, EvalParams, EvalProgress, collection_name, run

__all__ = [
    "Attribution",
    "ContextScorer",
    "DocScore",
    "EvalDataset",
    "EvalParams",
    "EvalProgress",
    "EvalReport",
    "GateCheck",
    "GateResult",
    "JudgeParams",
    "Outcome",
    "RunFiles",
    "StageReport",
    "collection_name",
    "gate",
    "latest_run",
    "load_dataset",
    "load_report",
    "run",
    "subset",
    "write_run",
]
