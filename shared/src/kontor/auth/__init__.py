"""JWT authentication and role checks for every service's API.

Tokens carry `sub` (the user id), `roles` (`member`, `advisor`), and optionally `name`
and `email`. HS256 with a configured secret by default; RS256 with keys from a JWKS
URL when `jwks_url` is set (Keycloak's `kontor` realm, see kontor.devinfra.keycloak); in development
`jwt_accept_dev_tokens` accepts the HS256 development tokens beside those (`make up`).

A request may narrow its token to one of its roles with the header `Kontor-Role: member`
(`ACTING_ROLE_HEADER`): a user with both roles then acts as a member only.

A service's token carries no role but a `scope` (OAuth style, space-separated): the only
one is `documents:read`, with which notifications fetches the documents it attaches. Such
a token is accepted by the document downloads (`DocumentReader`) and refused everywhere else.
With Keycloak it is the client-credentials token of `kontor-notifications` (RS256, no `roles`),
whose `scope` also names Keycloak's own scopes (`profile email`): only the ones in SCOPES count.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kontor.contracts.common import Actor
from kontor.errors import Forbidden
from kontor.settings import ServiceSettings

ROLES = ("member", "advisor")
SCOPES = ("documents:read",)
# A user whose token carries both roles works in one of them at a time (the portal's role switch):
# this request header names it, and the request then has that role only. It can only narrow what
# the token allows; a role the token does not carry is refused with 403.
ACTING_ROLE_HEADER = "Kontor-Role"


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset[str] = field(default_factory=frozenset)
    name: str | None = None
    email: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def reads_all_documents(self) -> bool:
        """A service allowed to fetch any stored document (and nothing else)."""
        return "documents:read" in self.scopes

    @property
    def is_advisor(self) -> bool:
        return "advisor" in self.roles

    @property
    def is_member(self) -> bool:
        return "member" in self.roles

    @property
    def actor(self) -> Actor:
        """The principal as it is named in events and histories."""
        if not self.roles:
            return Actor(kind="system", id=self.sub, name=self.name)
        return Actor(kind="advisor" if self.is_advisor else "member", id=self.sub, name=self.name)

    def require_advisor(self, what: str) -> None:
        """For use cases only advisors may run (the route may also be reached by members)."""
        if not self.is_advisor:
            raise Forbidden(f"only advisors {what}")


class InvalidToken(Exception):
    pass


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.algorithm = "RS256" if settings.jwks_url else settings.jwt_algorithm
        self.secret = settings.jwt_secret.get_secret_value()
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
        # development only (the settings refuse it elsewhere): HS256 tokens beside the JWKS's RS256 ones
        self.dev_tokens = bool(self.jwks and settings.jwt_accept_dev_tokens)

    async def verify(self, token: str) -> Principal:
        try:
            if self.dev_tokens and jwt.get_unverified_header(token).get("alg") == "HS256":
                # kontor-token's carry no audience, notifications' document token the configured one
                unverified = jwt.decode(token, options={"verify_signature": False})
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["sub", "exp"]},
                                    audience=self.audience if "aud" in unverified else None)
            else:
                key = (await run_in_threadpool(self.jwks.get_signing_key_from_jwt, token)).key if self.jwks \
                    else self.secret
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[self.algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
                )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise InvalidToken(str(exc)) from exc
        roles = claims.get("roles") or []
        if isinstance(roles, str):
            roles = [roles]
        scope = claims.get("scope") or ""
        scopes = scope.split() if isinstance(scope, str) else []
        return Principal(sub=str(claims["sub"]), roles=frozenset(r for r in roles if r in ROLES),
                         name=claims.get("name"), email=claims.get("email"),
                         scopes=frozenset(s for s in scopes if s in SCOPES))


def mint_token(
    secret: str,
    sub: str,
    roles: list[str],
    *,
    name: str | None = None,
    email: str | None = None,
    ttl: dt.timedelta = dt.timedelta(hours=12),
    audience: str | None = None,
    issuer: str | None = None,
    now: dt.datetime | None = None,
    scopes: list[str] | None = None,
) -> str:
    """An HS256 token for development and tests, or, with `scopes` and no roles, a service's token."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}; allowed: {ROLES}")
    unknown = set(scopes or ()) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}; allowed: {SCOPES}")
    now = now or dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {"sub": sub, "roles": roles, "iat": now, "exp": now + ttl}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if name:
        claims["name"] = name
    if email:
        claims["email"] = email
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False, description="JWT with roles `member` or `advisor`")


async def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid token: {exc}",
                            headers={"WWW-Authenticate": "Bearer"}) from exc
    return acting_as(principal, request.headers.get(ACTING_ROLE_HEADER))


def acting_as(principal: Principal, role: str | None) -> Principal:
    """The principal narrowed to the role named in the `Kontor-Role` header (unchanged without one)."""
    if role is None:
        return principal
    if role not in ROLES or role not in principal.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"header {ACTING_ROLE_HEADER}: the token does not carry the role {role[:20]!r}")
    return replace(principal, roles=frozenset({role}))


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = await _verified(request, credentials)
    if not principal.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "token has no Kontor role (member or advisor)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def document_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A user with a role, or a service whose token has the scope `documents:read`."""
    principal = await _verified(request, credentials)
    if not principal.roles and not principal.reads_all_documents:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "token has neither a Kontor role (member or advisor) nor the scope documents:read")
    return principal


DocumentReader = Annotated[Principal, Depends(document_reader)]


def require_role(role: str):
    async def check(principal: CurrentPrincipal) -> Principal:
        if role not in principal.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires role {role!r}")
        return principal

    return check


Advisor = Annotated[Principal, Depends(require_role("advisor"))]
Member = Annotated[Principal, Depends(require_role("member"))]
