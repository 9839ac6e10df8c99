"""Bearer JWTs issued elsewhere (for example by Supabase Auth), carrying a role claim.

HS256 against a shared secret, or RS256/ES256 against the keys of a JWKS file. The algorithm
list is fixed by the configuration, never taken from the token, so `alg: none` and algorithm
confusion are refused; `exp` is required, and `aud` and `iss` when configured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jwt

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import Identity
from execmetrics.config import Settings
from execmetrics.errors import NotAuthenticated

ASYMMETRIC = ["RS256", "ES256"]


@dataclass(frozen=True)
class JwtVerifier:
    secret: str | None
    keys: jwt.PyJWKSet | None
    audience: str | None
    issuer: str | None
    role_claim: str

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        if settings.jwt_secret is None and settings.jwt_jwks_file is None:
            return None
        keys = _load_jwks(settings.jwt_jwks_file) if settings.jwt_jwks_file else None
        return cls(
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            keys,
            settings.jwt_audience,
            settings.jwt_issuer,
            settings.jwt_role_claim,
        )

    def identity(self, token: str) -> Identity:
        """The caller's identity; raises NotAuthenticated saying why the token is refused."""
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            key: object
            if algorithm == "HS256" and self.secret is not None:
                key = self.secret
            elif algorithm in ASYMMETRIC and self.keys is not None:
                key = self._public_key(header.get("kid"), algorithm)
            else:
                raise NotAuthenticated(f"JWT algorithm {algorithm!r} is not accepted")
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "sub"]
                    + (["aud"] if self.audience else [])
                    + (["iss"] if self.issuer else []),
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.PyJWTError as error:
            raise NotAuthenticated(f"JWT refused: {error}") from None
        role = claims.get(self.role_claim)
        if not isinstance(role, str) or role not in Role.__members__.values():
            raise NotAuthenticated(f"JWT refused: claim {self.role_claim!r} holds no known role")
        return Identity("jwt", str(claims["sub"])[:200], Role(role))

    def _public_key(self, kid: object, algorithm: str) -> object:
        assert self.keys is not None
        matching = [
            k
            for k in self.keys.keys
            if (kid is None or k.key_id == kid) and k.algorithm_name in (algorithm, None)
        ]
        if not matching:
            raise NotAuthenticated(f"JWT refused: no key {kid!r} for {algorithm}")
        return matching[0].key


def _load_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, jwt.PyJWTError) as error:
        raise ValueError(f"EXECMETRICS_JWT_JWKS_FILE: cannot load {path}: {error}") from None
