"""Keycloak, the identity provider, from its distribution on Maven Central
(`org.keycloak:keycloak-quarkus-dist`, unpacked by `deploy/keycloak/pom.xml` into
`.local/keycloak/dist/`), run in development mode with its file database (H2) under
`.local/<name>/` and the `kontor` realm imported from `deploy/keycloak/kontor-realm.json`.

The realm (see `REALM`, `DEMO_USERS`):
- realm roles `member` and `advisor`, in the access token's `roles` claim (a "User Realm Role"
  mapper on each client); new users get `member` (the realm's default roles);
- access tokens carry `aud: kontor-api` (an audience mapper): services configured with
  `jwks_url`=`LocalKeycloak.jwks_url`, `jwt_issuer`=`LocalKeycloak.issuer` and
  `jwt_audience`=`AUDIENCE` accept them and refuse tokens made for other audiences;
- `kontor-portal`: public OIDC client, authorization code with PKCE S256, redirect URIs
  `http://127.0.0.1:8100/*`; `kontor-tests`: public client with the password grant, for tests
  and the demo only (a development realm);
- `kontor-notifications`: confidential client with only the client-credentials grant (service
  account without realm roles), whose tokens carry `aud: kontor-api` and the scope `documents:read`
  (the client scope of `deploy/keycloak/client-scope-documents-read.json`, which `start` adds with the
  admin API: a realm file that declares any `clientScopes` loses all of Keycloak's built-in ones);
  its secret in the realm file is `${KONTOR_NOTIFICATIONS_CLIENT_SECRET:...}`, the environment variable
  when Keycloak imports the realm, else `NOTIFICATIONS_DEV_SECRET` (development only);
- self-registration with the e-mail as user name, no e-mail verification, the privacy policy
  accepted on registration (required action "Terms and Conditions", a default action); German
  (default) and English.

Keycloak needs Java 21 or newer: `java_home()` finds one (KONTOR_KEYCLOAK_JAVA_HOME, JAVA_HOME,
or the newest under /usr/lib/jvm).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kontor.devinfra import InfraError, local_dir, port_open, project_root

REALM = "kontor"
AUDIENCE = "kontor-api"
PORTAL_CLIENT = "kontor-portal"
TEST_CLIENT = "kontor-tests"  # password grant; development only
NOTIFICATIONS_CLIENT = "kontor-notifications"  # client credentials: the documents e-mails attach
NOTIFICATIONS_DEV_SECRET = "dev-notifications-secret-replace-me"  # noqa: S105 - the realm file's, development only
DOCUMENTS_SCOPE = "documents:read"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - the master realm's bootstrap admin, development only

# The demo users of the realm file (e-mail, password, realm roles).
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mia@kontor.example", "mia-kontor-2026", ("member",)),
    ("anton@kontor.example", "anton-kontor-2026", ("advisor",)),
    ("beate@kontor.example", "beate-kontor-2026", ("member", "advisor")),
)

MIN_JAVA = 21


def realm_file() -> Path:
    return project_root() / "deploy" / "keycloak" / "kontor-realm.json"


def version() -> str:
    """The version `deploy/keycloak/pom.xml` fetches."""
    pom = (project_root() / "deploy" / "keycloak" / "pom.xml").read_text()
    match = re.search(r"<keycloak\.version>([^<]+)</keycloak\.version>", pom)
    if not match:
        raise InfraError("deploy/keycloak/pom.xml names no keycloak.version")
    return match.group(1).strip()


def distribution() -> Path:
    """The unpacked distribution of the version the pom names, under .local/keycloak/dist."""
    home = project_root() / ".local" / "keycloak" / "dist" / f"keycloak-{version()}"
    if not (home / "bin" / "kc.sh").is_file():
        raise InfraError(f"Keycloak is missing in {home}: run `make setup` "
                         "(it runs `mvn -f deploy/keycloak/pom.xml package`)")
    return home


def _java_major(home: Path) -> int:
    release = home / "release"
    if release.is_file():
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1))
    return 0


def java_home() -> Path:
    for env in ("KONTOR_KEYCLOAK_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(env)
        if value and _java_major(Path(value)) >= MIN_JAVA:
            return Path(value)
    jvms = Path("/usr/lib/jvm")
    candidates = [p for p in jvms.iterdir() if p.is_dir() and not p.is_symlink()] if jvms.is_dir() else []
    usable = sorted((_java_major(p), p) for p in candidates if _java_major(p) >= MIN_JAVA)
    if usable:
        return usable[-1][1]
    java = shutil.which("java")
    if java:
        home = Path(java).resolve().parent.parent
        if _java_major(home) >= MIN_JAVA:
            return home
    raise InfraError(f"Keycloak needs Java {MIN_JAVA}+ and none was found (set KONTOR_KEYCLOAK_JAVA_HOME; "
                     "Debian: apt-get install openjdk-21-jre-headless)")


@dataclass
class LocalKeycloak:
    """Keycloak on `host:port` (management interface on `port + 1`), data in `.local/<name>/`.
    `fresh=True` removes that data first, so the realm is imported anew (tests); otherwise an
    existing realm is kept as it is (users who signed up stay) and the realm file is not re-read."""

    host: str = "127.0.0.1"
    port: int = 8180
    name: str = "keycloak-data"
    fresh: bool = False
    heap: str = "768m"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        """The realm's URL, the `iss` of its tokens (the hostname is fixed to `url`)."""
        return f"{self.url}/realms/{REALM}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def log(self) -> Path:
        return local_dir(self.name) / "keycloak.log"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2) as resp:  # noqa: S310 - our own http URL
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout_s: float = 240) -> float | None:
        """Start Keycloak unless the realm answers already; returns the start-up seconds (until the
        realm's discovery document answers), or None when reused."""
        started = time.monotonic()
        if self.ready():
            self.ensure_documents_scope()
            return None
        if port_open(self.host, self.port):
            raise InfraError(f"port {self.port} is taken by a program that is not Keycloak with the {REALM} realm")
        dist = distribution()
        home = java_home()
        base = project_root() / ".local" / self.name
        if self.fresh and base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "JAVA_HOME": str(home), "PATH": f"{home / 'bin'}:{os.environ.get('PATH', '')}",
               "JAVA_OPTS_KC_HEAP": f"-Xms256m -Xmx{self.heap}",
               # Java 24+: JBoss threads resets thread locals through java.lang's internals
               "JAVA_OPTS_APPEND": "--add-opens java.base/java.lang=ALL-UNNAMED",
               "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER, "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD}
        argv = [str(dist / "bin" / "kc.sh"), "start-dev",
                "--http-host", self.host, "--http-port", str(self.port),
                "--http-management-port", str(self.port + 1),
                "--hostname", self.url,
                "--db", "dev-file",
                "--db-url", f"jdbc:h2:file:{base / 'h2' / 'keycloakdb'};NON_KEYWORDS=VALUE",
                "--import-realm", "--log-level", "INFO"]
        # --import-realm reads <distribution>/data/import (a realm that exists already is kept)
        dist_import = dist / "data" / "import"
        dist_import.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(realm_file(), dist_import / "kontor-realm.json")
        self.process = subprocess.Popen(argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,  # noqa: S603 - argv of our own
                                        env=env, start_new_session=True, cwd=base)
        while time.monotonic() - started < timeout_s:
            if self.ready():
                self.ensure_documents_scope()
                return time.monotonic() - started
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise InfraError(f"Keycloak exited with code {self.process.returncode} before it was ready\n{tail}")
            time.sleep(0.5)
        raise InfraError(f"Keycloak was not ready within {timeout_s:.0f}s (log: {self.log})")

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ensure_documents_scope(self) -> bool:
        """The client scope `documents:read` (deploy/keycloak/client-scope-documents-read.json) exists and
        is a default scope of `kontor-notifications`, so its client-credentials tokens carry it in `scope`
        (idempotent). False when the realm has no such client (imported before it was in the realm file)."""
        scope = json.loads((realm_file().parent / "client-scope-documents-read.json").read_text())
        clients = self.admin("GET", f"/clients?clientId={NOTIFICATIONS_CLIENT}")
        if not isinstance(clients, list) or not clients:
            return False
        existing = self.admin("GET", "/client-scopes")
        found = [s for s in existing if s["name"] == scope["name"]] if isinstance(existing, list) else []
        if not found:
            self.admin("POST", "/client-scopes", scope)
            created = self.admin("GET", "/client-scopes")
            found = [s for s in created if s["name"] == scope["name"]] if isinstance(created, list) else []
        if not found:
            raise InfraError(f"Keycloak did not create the client scope {scope['name']}")
        client_id, scope_id = clients[0]["id"], found[0]["id"]
        defaults = self.admin("GET", f"/clients/{client_id}/default-client-scopes")
        if not isinstance(defaults, list) or scope_id not in {d["id"] for d in defaults}:
            self.admin("PUT", f"/clients/{client_id}/default-client-scopes/{scope_id}")
        return True

    def client_credentials_token(self, client_id: str = NOTIFICATIONS_CLIENT,
                                 secret: str = NOTIFICATIONS_DEV_SECRET) -> dict:
        """The token response of the client-credentials grant (a service's token)."""
        return _post_form(self.token_url, {"grant_type": "client_credentials", "client_id": client_id,
                                           "client_secret": secret})

    # --- tokens and the admin API (tests, the demo) -------------------------------------------

    def password_token(self, username: str, password: str, client_id: str = TEST_CLIENT) -> dict:
        """The token response of the password grant (`access_token`, ...); development only."""
        return _post_form(self.token_url, {"grant_type": "password", "client_id": client_id,
                                           "username": username, "password": password, "scope": "openid"})

    def admin_token(self) -> str:
        resp = _post_form(f"{self.url}/realms/master/protocol/openid-connect/token",
                          {"grant_type": "password", "client_id": "admin-cli",
                           "username": ADMIN_USER, "password": ADMIN_PASSWORD})
        return str(resp["access_token"])

    def admin(self, method: str, path: str, body: object | None = None) -> object:
        """A call of the admin REST API under /admin/realms/kontor; the decoded JSON or None."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/admin/realms/{REALM}{path}", data=data, method=method,  # noqa: S310 - our own http URL
                                     headers={"Authorization": f"Bearer {self.admin_token()}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own http URL
            raw = resp.read()
        return json.loads(raw) if raw else None


def _post_form(url: str, form: dict[str, str]) -> dict:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own http URL
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise InfraError(f"{url}: {exc.code} {exc.read().decode(errors='replace')}") from exc
