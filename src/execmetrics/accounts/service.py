"""Users, API tokens and dashboard sessions, stored only as hashes.

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from execmetrics.accounts.roles import Role
from execmetrics.errors import Conflict, InvalidParameter, NotFound
from execmetrics.store.tables import api_tokens, users, web_sessions
from execmetrics.timeutil import now_micros

TOKEN_PREFIX = "emt_"
TOKEN_BYTES = 32  # 256 random bits
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
HOUR = 3600 * 10**6
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# argon2id with the library's defaults (RFC 9106 low-memory profile).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Compared against when the email is unknown, so a sign-in takes as long either way
    (made on first use: hashing costs every command 0.1 s at start-up)."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Identity:
    """Who is calling: a user (dashboard session), an API token, or an external JWT."""

    kind: str  # "user", "token" or "jwt"
    name: str  # email, token name or JWT subject
    role: Role

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise InvalidParameter("email", f"not an email address: {email!r}")
    return email


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidParameter(
            "password",
            f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long",
        )


def create_user(connection: Connection, email: str, password: str, role: Role) -> int:
    email = normalise_email(email)
    check_password(password)
    if connection.execute(select(users.c.id).where(users.c.email == email)).first():
        raise Conflict(f"a user with email {email} already exists")
    result = connection.execute(
        insert(users).values(
            email=email,
            password_hash=_hasher.hash(password),
            role=role.value,
            created_at=now_micros(),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def authenticate_password(connection: Connection, email: str, password: str) -> int | None:
    """The user id when the email and password match an enabled user; None otherwise."""
    row = connection.execute(
        select(users.c.id, users.c.password_hash).where(
            users.c.email == email.strip().lower(), users.c.disabled_at.is_(None)
        )
    ).first()
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        connection.execute(
            update(users).where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return int(row.id)


def list_users(connection: Connection) -> list[dict[str, object]]:
    query = select(users.c.id, users.c.email, users.c.role, users.c.created_at, users.c.disabled_at)
    return [dict(row._mapping) for row in connection.execute(query.order_by(users.c.id))]


def create_token(
    connection: Connection, name: str, role: Role, lifetime_micros: int
) -> tuple[str, int]:
    """A new API token: (the token, shown only now; its expiry instant)."""
    if not _TOKEN_NAME.fullmatch(name):
        raise InvalidParameter(
            "name", "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if lifetime_micros <= 0:
        raise InvalidParameter("expires", "must be a positive duration")
    if connection.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
        raise Conflict(f"a token named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    now = now_micros()
    expires_at = now + lifetime_micros
    connection.execute(
        insert(api_tokens).values(
            name=name,
            token_hash=_sha256(token),
            role=role.value,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, expires_at


def revoke_token(connection: Connection, name: str) -> None:
    result = connection.execute(
        update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now_micros())
    )
    if result.rowcount == 0:
        raise NotFound(f"no active token named {name!r}")


def list_tokens(connection: Connection) -> list[dict[str, object]]:
    t = api_tokens.c
    query = select(t.name, t.role, t.created_at, t.expires_at, t.revoked_at, t.last_used_at)
    return [dict(row._mapping) for row in connection.execute(query.order_by(t.id))]


def token_identity(connection: Connection, token: str) -> Identity | None:
    """The identity of a valid (known, unexpired, unrevoked) API token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = connection.execute(
        select(api_tokens.c.name, api_tokens.c.role).where(
            api_tokens.c.token_hash == _sha256(token),
            api_tokens.c.revoked_at.is_(None),
            api_tokens.c.expires_at > now_micros(),
        )
    ).first()
    return None if row is None else Identity("token", row.name, Role(row.role))


@dataclass(frozen=True)
class WebSession:
    identity: Identity
    csrf_token: str


def create_session(connection: Connection, user_id: int, hours: int) -> tuple[str, str]:
    """A new dashboard session: (the cookie value, its CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = now_micros()
    connection.execute(
        insert(web_sessions).values(
            session_hash=_sha256(secret),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + hours * HOUR,
        )
    )
    return secret, csrf


def session_for(connection: Connection, secret: str) -> WebSession | None:
    if not secret or len(secret) > 100:
        return None
    row = connection.execute(
        select(users.c.email, users.c.role, web_sessions.c.csrf_token)
        .join_from(web_sessions, users, users.c.id == web_sessions.c.user_id)
        .where(
            web_sessions.c.session_hash == _sha256(secret),
            web_sessions.c.expires_at > now_micros(),
            users.c.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return WebSession(Identity("user", row.email, Role(row.role)), row.csrf_token)


def end_session(connection: Connection, secret: str) -> None:
    connection.execute(delete(web_sessions).where(web_sessions.c.session_hash == _sha256(secret)))


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
