"""API keys: a TOML file of sha256 hashes, each mapped to a principal (tenant, groups, admin).

Only hashes are stored; ``add_key`` makes a random key, appends its hash and returns the key
once. The tenant and groups of a request come from its key, never from the request body.

The file is re-read when its content changes (sha256 of its bytes, checked on every request, so
``ragctx keys add`` while serving takes effect at the next request). A deleted file revokes every
key (fail closed); a file that turns invalid keeps the last good keys, logs why and keeps the
error in ``KeyRing.last_error`` (``/readyz`` reports it and says 503 until the file is fixed).
A key may carry ``expires`` (a TOML date or date-time, UTC when it has no offset); an expired
key is refused with a message saying so.

File format::

    [[keys]]
    id = "demo-acme-support"
    sha256 = "…64 hex digits…"
    tenant = "acme"
    groups = ["support"]
    admin = false
    operator = false                 # optional: an admin key for every tenant
    review = false                   # optional: a reviewer key (traces + feedback only)
    expires = 2027-01-01T00:00:00Z   # optional

An admin key is confined to its own tenant (it syncs into it and sees its jobs only) unless it
is marked ``operator = true``; an admin key without the field is a tenant admin (fail safe).
``operator`` needs ``admin = true``.

A reviewer key (``review = true``, ``ragctx keys add --review``) reads its tenant's traces, judges
them and logs in to the review console (``/review``); nothing else: ``/v1/context``, MCP and the
admin routes refuse it (403). It cannot also be an admin key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import stat
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from core.errors import InvalidInputError, RagctxError
from core.types import Principal

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
KEY_PREFIX = "rgx_"

# sha256 of the demo keys published in data/keys.sample.toml and the README (their plaintext is
# public): `ragctx serve` refuses a non-loopback address while any of them is in the keys file.
DEMO_KEY_SHA256 = frozenset(
    {
        "768e573008a9b70ddde2f5d1321822116072f2c10b18fac7ba798ab81435c856",
        "222a3b03b0d1b9d6d317c1acf9efe23f16bfc15789bfaba3898e9d4d27136036",
        "d8359561000e74e60ab3425cef43ccff96722666c9b3e41cfaaf9dddba739e30",
        "ac5bb3526d3be432ba19fb1fc0712d350c160bd2169cd24401c9fcaeaac2d860",
        "81e0a7ebecf9baf5ca409e2a1cc73ff64eb3cf3fc67ed5e99ccae1042e82856e",
    }
)


class KeysFileError(RagctxError):
    """The keys file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key's grant: who it is, which tenant and groups it sees, whether it is an admin."""

    id: str
    sha256: str
    tenant: str
    groups: tuple[str, ...]
    admin: bool = False
    expires: datetime | None = None
    operator: bool = False
    """An admin key for every tenant; without it an admin key is confined to ``tenant``."""
    review: bool = False
    """A reviewer key: its tenant's traces and feedback (and ``/review``), nothing else."""

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the key's expiry has passed (never, without one)."""
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires

    def principal(self) -> Principal:
        """The principal requests with this key act as."""
        return Principal(tenant=self.tenant, groups=self.groups, name=self.id)


def demo_keys(keys: dict[str, ApiKey]) -> list[ApiKey]:
    """The published demo keys among ``keys`` (matched by hash, whatever their ids)."""
    return sorted((k for k in keys.values() if k.sha256 in DEMO_KEY_SHA256), key=lambda k: k.id)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address: 127.0.0.0/8, ::1 or ``localhost``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # another host name: it may resolve to anything
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def hash_key(key: str) -> str:
    """The stored form of a key: sha256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_keys(path: Path) -> dict[str, ApiKey]:
    """Parse the keys file into ``{sha256: ApiKey}``.

    Raises:
        KeysFileError: the file is missing, is not TOML, or an entry is malformed.
    """
    if not path.is_file():
        raise KeysFileError(
            f"keys file {str(path)!r} not found; create a key with `ragctx keys add --tenant T "
            "--groups G` or copy data/keys.sample.toml there (set RAGCTX_KEYS_FILE to use "
            "another file)"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise KeysFileError(f"keys file {str(path)!r} is not valid TOML: {err}") from err
    return _parse_keys(path, text)


def _parse_keys(path: Path, text: str) -> dict[str, ApiKey]:
    """The keys of ``text``, the content of the keys file ``path`` (named in errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise KeysFileError(f"keys file {str(path)!r} is not valid TOML: {err}") from err
    entries = raw.get("keys", [])
    if not isinstance(entries, list):
        raise KeysFileError(f"keys file {str(path)!r}: 'keys' must be an array of tables")
    keys: dict[str, ApiKey] = {}
    ids: set[str] = set()
    for i, entry in enumerate(entries):
        key = _parse_entry(path, i, entry)
        if key.id in ids:
            raise KeysFileError(f"keys file {str(path)!r}: key id {key.id!r} appears twice")
        ids.add(key.id)
        keys[key.sha256] = key
    return keys


def _parse_entry(path: Path, i: int, entry: object) -> ApiKey:
    where = f"keys file {str(path)!r}, keys[{i}]"
    if not isinstance(entry, dict):
        raise KeysFileError(f"{where}: expected a table")
    allowed = {"id", "sha256", "tenant", "groups", "admin", "operator", "review", "expires"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise KeysFileError(
            f"{where}: unknown field(s) {unknown}; allowed: id, sha256, tenant, groups, admin, "
            "operator, review, expires"
        )
    key_id, digest, tenant = entry.get("id"), entry.get("sha256"), entry.get("tenant")
    groups, admin = entry.get("groups", []), entry.get("admin", False)
    if not isinstance(key_id, str) or not _NAME.fullmatch(key_id):
        raise KeysFileError(f"{where}: 'id' must be a short name, got {key_id!r}")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise KeysFileError(f"{where} ({key_id}): 'sha256' must be 64 lower-case hex digits")
    if not isinstance(tenant, str) or not tenant:
        raise KeysFileError(f"{where} ({key_id}): 'tenant' must be a non-empty string")
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise KeysFileError(f"{where} ({key_id}): 'groups' must be a list of strings")
    if not isinstance(admin, bool):
        raise KeysFileError(f"{where} ({key_id}): 'admin' must be true or false")
    operator = entry.get("operator", False)
    if not isinstance(operator, bool):
        raise KeysFileError(f"{where} ({key_id}): 'operator' must be true or false")
    if operator and not admin:
        raise KeysFileError(
            f"{where} ({key_id}): 'operator = true' needs 'admin = true' (an operator key is an "
            "admin key for every tenant)"
        )
    review = entry.get("review", False)
    if not isinstance(review, bool):
        raise KeysFileError(f"{where} ({key_id}): 'review' must be true or false")
    if review and admin:
        raise KeysFileError(
            f"{where} ({key_id}): 'review = true' and 'admin = true' together; a reviewer key "
            "only reads traces and judges them, make a separate admin key"
        )
    expires = _expiry(entry.get("expires"), f"{where} ({key_id})")
    return ApiKey(
        id=key_id,
        sha256=digest,
        tenant=tenant,
        groups=tuple(groups),
        admin=admin,
        expires=expires,
        operator=operator,
        review=review,
    )


def _expiry(value: object, where: str) -> datetime | None:
    """A TOML date or date-time as an aware UTC datetime (a bare date: its midnight, UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise KeysFileError(
        f"{where}: 'expires' must be a TOML date or date-time such as 2027-01-01, got {value!r}"
    )


class KeyRing:
    """The keys of a running server, re-read when the file's content (sha256) changes.

    A missing file revokes every key; an invalid one keeps the last good keys and sets
    ``last_error`` (cleared by the next good read).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._digest = self._content_digest()
        self._keys = load_keys(path)
        self.last_error: str | None = None

    def _content_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def _refresh(self) -> None:
        digest = self._content_digest()
        if digest == self._digest:
            return
        with self._lock:
            if digest == self._digest:
                return
            self._digest = digest
            if digest is None:
                # fail closed: a removed keys file must not leave old keys working
                self._keys = {}
                self.last_error = (
                    f"keys file {str(self.path)!r} is gone; every key is revoked until it is "
                    "restored (set RAGCTX_KEYS_FILE or create keys with `ragctx keys add`)"
                )
                log.error("%s", self.last_error)
                return
            try:
                self._keys = load_keys(self.path)
            except KeysFileError as err:
                self.last_error = f"{err}; keeping the last good keys until it is fixed"
                log.error("keys file changed but is invalid; keeping the last good keys: %s", err)
                return
            self.last_error = None
            log.info("keys file reloaded: %d keys", len(self._keys))

    def verify(self, key: str) -> ApiKey | None:
        """The grant of ``key``, or None when it is not a known key (expiry is not checked)."""
        self._refresh()
        digest = hash_key(key)
        found = self._keys.get(digest)
        # the dict lookup compares hashes of hashes; compare_digest keeps the last step constant
        if found is None or not secrets.compare_digest(found.sha256, digest):
            return None
        return found

    def check(self) -> str | None:
        """Re-read the file if it changed; the current keys-file error, if any."""
        self._refresh()
        return self.last_error

    def keys(self) -> dict[str, ApiKey]:
        """The keys in use, ``{sha256: ApiKey}``."""
        return dict(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


_DURATION = re.compile(r"^(\d{1,5})([dh])$")


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """``--expires``: an ISO date or date-time (UTC without an offset), or ``90d`` / ``12h``.

    Raises:
        InvalidInputError: not one of those, or not in the future.
    """
    now = now or datetime.now(UTC)
    text = text.strip()
    if m := _DURATION.fullmatch(text):
        unit = "days" if m.group(2) == "d" else "hours"
        when = now + timedelta(**{unit: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(
                f"--expires {text!r} is neither a date (2027-01-01), a date-time "
                "(2027-01-01T12:00:00Z) nor a duration (90d, 12h)",
                field="expires",
                value=text,
            ) from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when <= now:
        raise InvalidInputError(
            f"--expires {text!r} is in the past; give a future date or a duration such as 90d",
            field="expires",
            value=text,
        )
    return when.replace(microsecond=0)


def add_key(
    path: Path,
    *,
    tenant: str,
    groups: tuple[str, ...],
    admin: bool = False,
    key_id: str | None = None,
    expires: datetime | None = None,
    operator: bool = False,
    review: bool = False,
) -> tuple[ApiKey, str]:
    """Make a new random key, append its hash to ``path`` and return ``(grant, key)``.

    The key itself is returned once and stored nowhere. ``operator`` makes an admin key for
    every tenant (it implies ``admin``); ``review`` a reviewer key (never with either).

    Raises:
        InvalidInputError: a bad tenant, group or id, or an id already in the file.
        KeysFileError: the existing file is malformed.
    """
    if not tenant.strip():
        raise InvalidInputError("--tenant is empty; name the tenant the key sees", field="tenant")
    for g in groups:
        if not g.strip():
            raise InvalidInputError("a group name is empty", field="groups", value=list(groups))
    if review and (admin or operator):
        raise InvalidInputError(
            "--review with --admin or --operator: a reviewer key only reads traces and judges "
            "them; make a separate admin key",
            field="review",
        )
    existing = load_keys(path) if path.exists() else {}
    taken = {k.id for k in existing.values()}
    if key_id is None:
        key_id = f"{tenant}-{secrets.token_hex(4)}"
    if not _NAME.fullmatch(key_id):
        raise InvalidInputError(
            f"key id {key_id!r} is not a short name; use letters, digits, '_', '.', ':', '@' "
            "or '-'",
            field="id",
            value=key_id,
        )
    if key_id in taken:
        raise InvalidInputError(
            f"key id {key_id!r} is already in {str(path)!r}; choose another --id",
            field="id",
            value=key_id,
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    grant = ApiKey(
        id=key_id,
        sha256=hash_key(key),
        tenant=tenant,
        groups=groups,
        admin=admin or operator,
        expires=expires,
        operator=operator,
        review=review,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = ""
    if path.exists() and path.stat().st_size > 0 and not path.read_text("utf-8").endswith("\n"):
        prefix = "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(prefix + format_entry(grant))
    os.chmod(path, 0o600)
    return grant, key


_TABLE = re.compile(r"^\s*\[\[\s*keys\s*\]\]\s*(#.*)?$")


def revoke_key(path: Path, key_id: str) -> ApiKey:
    """Remove the key ``key_id`` from ``path`` and return its grant.

    The file is rewritten atomically (a temporary file in the same folder, same permissions,
    then ``os.replace``); the other keys and the comments before the first key are kept. A
    running server drops the key at its next request (the file's content changed).

    Raises:
        InvalidInputError: no key ``key_id`` in the file.
        KeysFileError: the file is missing or malformed (it is left as it is).
    """
    grants = {g.id: g for g in load_keys(path).values()}
    if key_id not in grants:
        raise InvalidInputError(
            f"no key {key_id!r} in {str(path)!r}; `ragctx keys list` shows the key ids "
            f"({', '.join(sorted(grants)) or 'none'})",
            field="id",
            value=key_id,
        )
    lines = path.read_text("utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _TABLE.match(line)] + [len(lines)]
    kept = lines[: starts[0]]
    for begin, end in zip(starts, starts[1:], strict=False):
        try:
            table = tomllib.loads("".join(lines[begin + 1 : end]))
        except tomllib.TOMLDecodeError:
            table = {}  # not a plain table: the check below refuses the edit
        if table.get("id") != key_id:
            kept.extend(lines[begin:end])
    text = "".join(kept)
    left = {g.id for g in _parse_keys(path, text).values()}
    if left != set(grants) - {key_id}:
        # a layout this line-based edit does not understand: refuse rather than lose keys
        raise KeysFileError(
            f"keys file {str(path)!r}: could not remove {key_id!r} without touching other "
            "keys; remove its [[keys]] table by hand"
        )
    _write_atomic(path, text)
    return grants[key_id]


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, keeping its permission bits."""
    mode = stat.S_IMODE(path.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_entry(grant: ApiKey) -> str:
    """One ``[[keys]]`` table. JSON string escapes are valid TOML basic-string escapes."""
    groups = ", ".join(json.dumps(g) for g in grant.groups)
    return (
        "\n[[keys]]\n"
        f"id = {json.dumps(grant.id)}\n"
        f"sha256 = {json.dumps(grant.sha256)}\n"
        f"tenant = {json.dumps(grant.tenant)}\n"
        f"groups = [{groups}]\n"
        f"admin = {'true' if grant.admin else 'false'}\n"
        + ("operator = true\n" if grant.operator else "")
        + ("review = true\n" if grant.review else "")
        + (
            ""
            if grant.expires is None
            else f"expires = {grant.expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        )
    )
