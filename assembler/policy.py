"""Loading and checking policy files: one error names the file, the key and the fix.

A service loads every policy at start-up with :func:`load_policies` and refuses to start on the
first problem; a deploy pipeline runs :func:`check_policies` (``ragctx policy check``) to list
them all.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from assembler.policy_schema import Policy, policy_json_schema
from core.errors import RagctxError

__all__ = [
    "LoadedPolicy",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "check_policies",
    "load_policies",
    "load_policy",
    "policy_json_schema",
]

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy file: where (file and key) and what to do."""

    path: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.message}"


class PolicyError(RagctxError):
    """A policy file that cannot be used: the service will not start; a request naming it gets
    503 (the policy folder is the operator's to fix, not the caller's)."""

    http_status = 503
    error_code = "policy_unavailable"
    field = "policy"

    def __init__(self, path: str | Path, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        super().__init__(f"{self.path}: {key}: {message}")


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy read from a file, with the file's sha256 (reported in every pack)."""

    policy: Policy
    sha256: str
    path: Path


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a policy must not lose a section."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            msg = f"key {key!r} appears twice; keep one"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _key_of(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else part
    return key or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Annotated, tuple, types.UnionType, typing.Union):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the schema allows at the mapping that holds ``loc``'s last key."""
    model: type[BaseModel] | None = Policy
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = None if field is None else _model_in(field.annotation)
    return [] if model is None else list(model.model_fields)


def _problem_from(path: str, error: Any) -> PolicyProblem:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    key = _key_of(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown key; allowed keys here are {', '.join(allowed)}{hint}"
    elif kind == "missing":
        message = "required key is missing; add it (every policy needs `name` and `version`)"
    else:
        text = str(error["msg"]).removeprefix("Value error, ")
        message = f"{text} (got {error.get('input')!r})"
    return PolicyProblem(path=path, key=key, message=message)


def _read(path: Path) -> tuple[Policy | None, str, list[PolicyProblem]]:
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        unreadable = f"cannot read it ({err.strerror}); check the path"
        return None, "", [PolicyProblem(where, "(file)", unreadable)]
    sha256 = hashlib.sha256(raw).hexdigest()
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except UnicodeDecodeError as err:
        return None, sha256, [PolicyProblem(where, "(file)", f"not UTF-8 text ({err.reason})")]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(err, "problem", None) or str(err)
        return None, sha256, [PolicyProblem(where, "(yaml)", f"{at}{what}; fix the YAML")]
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        message = f"a policy is a mapping of keys (name, version, exclude, ...), got {got}"
        return None, sha256, [PolicyProblem(where, "(top level)", message)]
    try:
        policy = Policy.model_validate(data)
    except ValidationError as err:
        return None, sha256, [_problem_from(where, error) for error in err.errors()]
    return policy.with_sha256(sha256), sha256, []


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load and check one policy file.

    Args:
        path: A YAML policy file.

    Returns:
        The policy with the file's sha256 and path.

    Raises:
        PolicyError: The file cannot be read or parsed, or a key is unknown, missing or wrong;
            the error names the file and the key (``exclude.patterns[0]``).

    Example:
        >>> loaded = load_policy("data/policies/default.yaml")
        >>> loaded.policy.name, len(loaded.sha256)
        ('default', 64)
    """
    file = Path(path)
    policy, sha256, problems = _read(file)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        tail = f" (and {more} more; `ragctx policy check {file}` lists all)" if more else ""
        raise PolicyError(first.path, first.key, first.message + tail)
    if policy is None:  # unreachable: _read returns a policy whenever it reports no problem
        raise PolicyError(file, "(file)", "could not be loaded")
    return LoadedPolicy(policy=policy, sha256=sha256, path=file)


def _policy_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES))
        else:
            files.append(path)
    return files


def check_policies(paths: Sequence[str | Path]) -> list[PolicyProblem]:
    """Check policy files (a folder stands for its ``*.yaml`` files) and list every problem.

    Args:
        paths: Policy files or folders of them.

    Returns:
        Every problem found, including two files that use the same policy name; empty if all
        files are valid.
    """
    problems: list[PolicyProblem] = []
    names: dict[str, Path] = {}
    for file in _policy_files(paths):
        policy, _, found = _read(file)
        problems.extend(found)
        if policy is None:
            continue
        first = names.setdefault(policy.name, file)
        if first != file:
            message = f"policy name {policy.name!r} is already used by {first}; rename one"
            problems.append(PolicyProblem(str(file), "name", message))
    return problems


def load_policies(folder: str | Path) -> dict[str, LoadedPolicy]:
    """Load every policy in a folder, keyed by policy name; fail on the first problem.

    Args:
        folder: The policy folder (``RAGCTX_POLICY_DIR``).

    Returns:
        The policies by name.

    Raises:
        PolicyError: The folder is missing or holds no policy, a file is invalid, or two files
            use the same name.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise PolicyError(directory, "(folder)", "not a folder; set the policy folder's path")
    loaded: dict[str, LoadedPolicy] = {}
    for file in _policy_files([directory]):
        policy = load_policy(file)
        name = policy.policy.name
        if name in loaded:
            message = f"policy name {name!r} is already used by {loaded[name].path}; rename one"
            raise PolicyError(file, "name", message)
        loaded[name] = policy
    if not loaded:
        message = f"holds no policy file ({', '.join(POLICY_SUFFIXES)}); add a default.yaml"
        raise PolicyError(directory, "(folder)", message)
    return loaded
