#!/usr/bin/env bash
# Everything a fresh machine needs before `make up` or `make test`, idempotent:
#   Java 17 + Maven (Kafka), PostgreSQL server binaries (Debian package), Prometheus (Debian package,
#   for a test), uv + the Python workspace in .venv, and the Kafka broker jars from Maven Central
#   (deploy/kafka/pom.xml), and Keycloak's distribution from Maven Central with a Java 21+ for it
#   (deploy/keycloak/pom.xml).
# As root, missing system packages are installed with apt-get; otherwise it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing: $* — install it (Debian/Ubuntu: sudo apt-get install -y $*) and run again"
  fi
  if [ "$APT_UPDATED" = 0 ]; then say "apt-get update"; apt-get update -qq; APT_UPDATED=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Java and Maven for the Kafka broker
if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || die "Java 17 or newer is needed for Kafka (found: ${java_major:-none})"
if ! command -v mvn >/dev/null; then apt_install maven; fi

# 2. PostgreSQL server binaries (the cluster itself lives in .local/postgres, see kontor.devinfra)
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && [ -z "${KONTOR_PG_BINDIR:-}" ]; then
  apt_install postgresql
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  die "running as root, but there is no 'postgres' user to run the server as: apt-get install postgresql"
fi

# 3. Pango and fonts for WeasyPrint (invoice PDFs)
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0.so.0 || ! ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset.so.0 \
    || ! [ -d /usr/share/fonts/truetype/dejavu ]; then
  apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
fi

# 3b. wkhtmltopdf, only for the renderer benchmark (`make bench` sets KONTOR_BENCH=1)
if [ "${KONTOR_BENCH:-0}" = 1 ] && ! command -v wkhtmltopdf >/dev/null; then
  apt_install wkhtmltopdf
fi

# 3c. Prometheus (Debian's package), for the test that scrapes the running services with a real server
#     (tests/test_metrics.py starts its own on a free port; the package's service is not used)
if ! command -v prometheus >/dev/null; then apt_install prometheus; fi

# 3d. Chromium (Debian's package), the real browser the portal's browser test drives with Playwright
#     (services/portal/tests/test_browser.py launches /usr/bin/chromium; `playwright install` is never run)
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi

# 4. Python workspace, on the distribution's interpreter (/usr/bin/python3). Debian builds it with
#    profile-guided and link-time optimisation, as the official Docker images (deploy/Dockerfile) are;
#    a plain source build (pyenv's default) is not, and renders invoices about a fifth slower.
#    KONTOR_PYTHON overrides the choice.
[ -x /usr/bin/python3 ] || [ -n "${KONTOR_PYTHON:-}" ] || apt_install python3 python3-venv
PYTHON=${KONTOR_PYTHON:-/usr/bin/python3}
if ! command -v uv >/dev/null; then
  if [ ! -x .local/tools/bin/uv ]; then
    say "installing uv into .local/tools"
    "$PYTHON" -c "import ensurepip" 2>/dev/null || apt_install python3-venv
    "$PYTHON" -m venv .local/tools
    .local/tools/bin/pip install -q "uv>=0.5"
  fi
  export PATH="$ROOT/.local/tools/bin:$PATH"
fi
export UV_PYTHON_DOWNLOADS=never
say "python workspace (.venv, $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])'))"
uv sync --all-packages --frozen --python "$PYTHON" -q

# 5. Kafka broker jars
if ! ls deploy/kafka/libs/kafka_2.13-*.jar >/dev/null 2>&1; then
  say "fetching Kafka jars from Maven Central (deploy/kafka/pom.xml)"
  mvn -B -q -f deploy/kafka/pom.xml package
fi

# 5b. Keycloak (the identity provider of make up and tests/test_keycloak.py): its distribution from Maven
#     Central, unpacked into .local/keycloak/dist (deploy/keycloak/pom.xml); it needs Java 21 or newer
KEYCLOAK_VERSION=$(sed -n 's:.*<keycloak.version>\(.*\)</keycloak.version>.*:\1:p' deploy/keycloak/pom.xml)
if ! [ -x ".local/keycloak/dist/keycloak-$KEYCLOAK_VERSION/bin/kc.sh" ]; then
  say "fetching Keycloak $KEYCLOAK_VERSION from Maven Central (deploy/keycloak/pom.xml)"
  mvn -B -q -f deploy/keycloak/pom.xml package
fi
java21=0
for release in /usr/lib/jvm/*/release; do
  major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release" 2>/dev/null)
  if [ "${major:-0}" -ge 21 ] 2>/dev/null; then java21=1; fi
done
if [ "$java21" = 0 ] && [ -z "${KONTOR_KEYCLOAK_JAVA_HOME:-}" ]; then apt_install openjdk-21-jre-headless; fi

# 5c. htmx (the portal's order form: the client search while typing), from the npm registry into
#     .local/static/htmx.min.js, served by the portal as /static/htmx.min.js (PORTAL_STATIC_DIR)
HTMX_VERSION=2.0.4
if ! [ -s .local/static/htmx.min.js ]; then
  say "fetching htmx.org $HTMX_VERSION from the npm registry"
  mkdir -p .local/static .local/npm
  (cd .local/npm && npm pack --silent "htmx.org@$HTMX_VERSION" >/dev/null \
    && tar -xzf "htmx.org-$HTMX_VERSION.tgz" package/dist/htmx.min.js \
    && cp package/dist/htmx.min.js ../static/htmx.min.js)
fi

# 6. kustomize, for the test that renders the Kubernetes manifests (deploy/k8s, tests/test_k8s.py): built
#    once with Go from the Go module proxy into .local/tools/bin (about 90 s; later runs reuse Go's caches)
KUSTOMIZE_VERSION=v5.7.1
KUSTOMIZE=.local/tools/bin/kustomize
if ! { [ -x "$KUSTOMIZE" ] && [ "$("$KUSTOMIZE" version 2>/dev/null)" = "$KUSTOMIZE_VERSION" ]; }; then
  GO=$(command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true)
  if [ -n "$GO" ]; then
    say "building kustomize $KUSTOMIZE_VERSION into .local/tools/bin"
    mkdir -p .local/tools/bin
    GOBIN="$ROOT/.local/tools/bin" GOFLAGS=-mod=mod "$GO" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  else
    printf '\033[33m[setup] no Go toolchain (1.22 or newer): kustomize not built, tests/test_k8s.py will fail\033[0m\n' >&2
  fi
fi
say "ready"
