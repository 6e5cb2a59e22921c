#!/usr/bin/env bash
# Containers on this machine, idempotent; `make images`, `make test` and `make compose-up` call it.
#   deploy/containers.sh engine    a container engine: Docker where one answers, else Debian's podman
#                                  (+ runc, netavark, iptables, debootstrap), configured for this kernel
#                                  (/etc/containers/containers.conf), and podman-compose in .local/containers
#   deploy/containers.sh images    engine, then the images (each rebuilt only when its inputs changed):
#                                  with podman and no registry, a Debian base made by debootstrap and
#                                  imported as localhost/debian-base:bookworm, Python, Kafka, PostgreSQL
#                                  an SMTP catcher and Keycloak on it (deploy/images/), and the four services
#                                  and the portal (deploy/Dockerfile) on that Python; with Docker only those,
#                                  on the official Python image (KONTOR_LOCAL_IMAGES=1: the local ones too)
#   deploy/containers.sh base      only the Debian base image (KONTOR_BASE_IMAGE names it)
#   deploy/containers.sh env       the compose variables that select the local images (for `eval`)
#   deploy/containers.sh health PROJECT   runs the health checks of PROJECT's containers every 2 s until
#                                  killed (podman runs them from systemd timers, and there is no systemd here)
#   deploy/containers.sh compose-up [PROJECT]   / compose-down [PROJECT]   compose.yaml with the local
#                                  images under podman-compose: infrastructure first until healthy, then
#                                  the rest; down removes the project's containers, volumes and network
# Timings of each build are printed; they go to .local/containers/timings.log too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.local/containers"
mkdir -p "$STATE"
say() { printf '\033[1m[containers]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[containers] %s\033[0m\n' "$*" >&2; exit 1; }

BASE_IMAGE=${KONTOR_BASE_IMAGE:-localhost/debian-base:bookworm}
PYTHON_LOCAL=localhost/kontor-python:3.11
KAFKA_LOCAL=localhost/kontor-kafka:3.9.1
POSTGRES_LOCAL=localhost/kontor-postgres:15
MAIL_LOCAL=localhost/kontor-mail:1
KEYCLOAK_VERSION=$(sed -n 's:.*<keycloak.version>\(.*\)</keycloak.version>.*:\1:p' deploy/keycloak/pom.xml)
KEYCLOAK_LOCAL=localhost/kontor-keycloak:$KEYCLOAK_VERSION
PODMAN_COMPOSE_VERSION=1.6.0
SERVICES=(orders clients invoicing notifications)
IMAGES=("${SERVICES[@]}" portal)  # built from deploy/Dockerfile

APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "missing: $* — install it (Debian: sudo apt-get install -y $*) and run again"
  if [ "$APT_UPDATED" = 0 ]; then say "apt-get update"; apt-get update -qq; APT_UPDATED=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

docker_answers() { command -v docker >/dev/null && timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

engine_name() {
  if [ -n "${CONTAINER_ENGINE:-}" ]; then echo "$CONTAINER_ENGINE"
  elif docker_answers; then echo docker
  else echo podman; fi
}

setup_podman() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/podman/netavark ] || missing+=(netavark)
  [ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)  # service names resolve in a project
  command -v iptables >/dev/null || missing+=(iptables)            # netavark publishes ports with it
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
  command -v fuse-overlayfs >/dev/null || missing+=(fuse-overlayfs)
  [ ${#missing[@]} = 0 ] || apt_install "${missing[@]}"
  # crun (podman's default) fails on this kernel's cgroup layout; podman's default ulimits are refused
  local conf=/etc/containers/containers.conf
  if ! grep -q '^runtime = "runc"' "$conf" 2>/dev/null || ! grep -q '^default_ulimits = \[\]' "$conf" 2>/dev/null; then
    [ "$(id -u)" = 0 ] || die "$conf needs [containers] default_ulimits = [] and [engine] runtime = \"runc\""
    [ -f "$conf" ] && cp "$conf" "$conf.before-kontor"
    say "writing $conf (runc, no default ulimits)"
    mkdir -p /etc/containers
    printf '%s\n' '# written by Kontor'"'"'s deploy/containers.sh' '[containers]' 'default_ulimits = []' '' \
      '[engine]' 'runtime = "runc"' > "$conf"
  fi
  if [ ! -x "$STATE/venv/bin/podman-compose" ]; then
    say "podman-compose $PODMAN_COMPOSE_VERSION into .local/containers/venv"
    /usr/bin/python3 -c "import ensurepip" 2>/dev/null || apt_install python3-venv
    /usr/bin/python3 -m venv "$STATE/venv"
    "$STATE/venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
}

cmd_engine() {
  local engine
  engine=$(engine_name)
  if [ "$engine" = podman ]; then setup_podman; fi
  echo "$engine"
}

image_label() {  # the inputs hash an image was built from, or nothing
  "$ENGINE" image inspect --format '{{ index .Config.Labels "kontor.inputs" }}' "$1" 2>/dev/null || true
}

inputs_hash() {  # of the files (and folders) given, and the build arguments after --
  local files=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do files+=("$1"); shift; done
  [ $# -gt 0 ] && shift && extra=("$@")
  { find "${files[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*/tests/*' -print0 \
      | sort -z | xargs -0 sha256sum; printf '%s\n' "${extra[@]}"; } | sha256sum | cut -c1-16
}

timed_build() {  # TAG HASH ARGS...: build unless an image of these inputs exists; prints the seconds
  local tag=$1 hash=$2; shift 2
  if [ "$(image_label "$tag")" = "$hash" ]; then say "$tag is up to date ($hash)"; return; fi
  say "building $tag"
  local started=$SECONDS secret=()
  # the machine's CA bundle, for downloads from PyPI behind a TLS-inspecting proxy; never in the image
  [ -s /etc/ssl/certs/ca-certificates.crt ] && secret=(--secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt)
  local flags=(--label "kontor.inputs=$hash" -t "$tag")
  if [ "$ENGINE" = podman ]; then flags+=(--network host --format docker --layers); fi
  local log="$STATE/build-${tag//[\/:]/_}.log"
  if ! "$ENGINE" build "${flags[@]}" "${secret[@]}" "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    die "building $tag failed (whole log: $log)"
  fi
  local size
  size=$("$ENGINE" image inspect --format '{{.Size}}' "$tag")
  say "built $tag in $((SECONDS - started)) s, $((size / 1000000)) MB"
  printf '%s build %s %ss %sMB\n' "$(date -u +%FT%TZ)" "$tag" "$((SECONDS - started))" "$((size / 1000000))" \
    >> "$STATE/timings.log"
}

base_image() {
  [ -n "$("$ENGINE" images -q "$BASE_IMAGE" 2>/dev/null)" ] && return
  say "making $BASE_IMAGE with debootstrap (minbase bookworm, Debian's packages)"
  local started=$SECONDS dir="$STATE/rootfs"
  rm -rf "$dir"
  debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/debootstrap.log" >&2; die "debootstrap failed (log: $STATE/debootstrap.log)"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | "$ENGINE" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$dir"
  say "made $BASE_IMAGE in $((SECONDS - started)) s"
  printf '%s base %s %ss\n' "$(date -u +%FT%TZ)" "$BASE_IMAGE" "$((SECONDS - started))" >> "$STATE/timings.log"
}

cmd_images() {
  ENGINE=$(cmd_engine)
  local started=$SECONDS local_images=${KONTOR_LOCAL_IMAGES:-}
  [ -n "$local_images" ] || { [ "$ENGINE" = podman ] && local_images=1 || local_images=0; }
  local python_image=python:3.11-slim
  if [ "$local_images" = 1 ]; then
    base_image
    local base_id
    base_id=$("$ENGINE" images -q "$BASE_IMAGE" | head -1)
    timed_build "$PYTHON_LOCAL" "$(inputs_hash deploy/images/python -- "$base_id")" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/images/python/Dockerfile deploy/images/python
    [ -n "$(ls deploy/kafka/libs/kafka_2.13-*.jar 2>/dev/null)" ] || die "no Kafka jars: run make setup first"
    timed_build "$KAFKA_LOCAL" "$(inputs_hash deploy/images/kafka deploy/kafka/libs -- "$base_id")" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/images/kafka/Dockerfile .
    timed_build "$POSTGRES_LOCAL" "$(inputs_hash deploy/images/postgres -- "$base_id")" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/images/postgres/Dockerfile deploy/images/postgres
    timed_build "$MAIL_LOCAL" "$(inputs_hash deploy/images/mail -- "$base_id")" \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/images/mail/Dockerfile deploy/images/mail
    keycloak_image "$base_id"
    python_image=$PYTHON_LOCAL
  fi
  local python_id
  python_id=$("$ENGINE" image inspect --format '{{.Id}}' "$python_image" 2>/dev/null || echo "$python_image")
  for service in "${IMAGES[@]}"; do
    timed_build "kontor-$service" \
      "$(inputs_hash deploy/Dockerfile .dockerignore pyproject.toml uv.lock shared services -- "$python_id" "$service")" \
      -f deploy/Dockerfile --build-arg "SERVICE=$service" --build-arg "PYTHON_IMAGE=$python_image" .
  done
  say "images ready in $((SECONDS - started)) s"
  "$ENGINE" images --filter reference='*kontor*' --filter reference='*debian-base*' >&2 || true
}

keycloak_image() {  # BASE_ID: Keycloak's distribution and a Java 21+ runtime (jlink) on the Debian base
  local dist="$ROOT/.local/keycloak/dist/keycloak-$KEYCLOAK_VERSION" java_home context="$STATE/keycloak-context"
  [ -x "$dist/bin/kc.sh" ] || die "no Keycloak distribution at $dist: run make setup first"
  java_home=$("$ROOT/.venv/bin/python" -c 'from kontor.devinfra.keycloak import java_home; print(java_home())') \
    || die "Keycloak needs Java 21+ on this machine to make the image's runtime (see deploy/keycloak/README.md)"
  local hash
  hash=$(inputs_hash deploy/images/keycloak deploy/keycloak/pom.xml -- "$1" "$java_home" "$("$java_home/bin/java" -version 2>&1 | head -1)")
  if [ "$(image_label "$KEYCLOAK_LOCAL")" != "$hash" ]; then
    rm -rf "$context" && mkdir -p "$context"
    say "a Java runtime for Keycloak from $java_home (jlink)"
    # every module of that Java but the linker and packager (JDK 24+ links from its own run-time image, without jmods)
    "$java_home/bin/jlink" --add-modules "$("$java_home/bin/java" --list-modules | sed 's/@.*//' | grep -vxE "jdk.(jlink|jpackage)" | paste -sd,)" \
      --strip-debug --no-man-pages --no-header-files --output "$context/java"
    cp -al "$dist" "$context/keycloak" 2>/dev/null || cp -a "$dist" "$context/keycloak"
  fi
  timed_build "$KEYCLOAK_LOCAL" "$hash" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$ROOT/deploy/images/keycloak/Dockerfile" "$context"
}

cmd_env() {  # the compose variables for the local images
  printf 'export KAFKA_IMAGE=%s POSTGRES_IMAGE=%s MAIL_IMAGE=%s PYTHON_IMAGE=%s KEYCLOAK_IMAGE=%s\n' \
    "$KAFKA_LOCAL" "$POSTGRES_LOCAL" "$MAIL_LOCAL" "$PYTHON_LOCAL" "$KEYCLOAK_LOCAL"
}

cmd_health() {  # ends by itself when the project has had no container for a minute
  local project=${1:?project name} idle=0 ids
  while [ $idle -lt 30 ]; do
    ids=$(podman ps -q --filter "label=io.podman.compose.project=$project" 2>/dev/null || true)
    if [ -z "$ids" ]; then idle=$((idle + 1)); else idle=0; fi
    for id in $ids; do
      if [ "$(podman inspect --format '{{if .Config.Healthcheck}}yes{{end}}' "$id" 2>/dev/null)" = yes ]; then
        podman healthcheck run "$id" >/dev/null 2>&1 || true  # the outcome is recorded in the container's state
      fi
    done
    sleep 2
  done
}

compose() { "$STATE/venv/bin/podman-compose" --in-pod false -p "$PROJECT" -f "$ROOT/compose.yaml" "$@"; }

wait_healthy() {  # PROJECT SERVICE...: until each service's container reports healthy (300 s at most)
  local deadline=$((SECONDS + ${KONTOR_COMPOSE_TIMEOUT:-300})) service status
  for service in "$@"; do
    while true; do
      status=$(podman inspect --format '{{.State.Health.Status}}' "${PROJECT}_${service}_1" 2>/dev/null || echo missing)
      [ "$status" = healthy ] && break
      [ $SECONDS -lt $deadline ] || die "$service is $status after ${KONTOR_COMPOSE_TIMEOUT:-300} s"
      sleep 1
    done
  done
}

cmd_compose_up() {
  PROJECT=${1:-kontor}
  [ "$(engine_name)" = podman ] || die "compose-up is for podman; with Docker: docker compose up --build"
  eval "$(cmd_env)"
  export KAFKA_IMAGE POSTGRES_IMAGE MAIL_IMAGE PYTHON_IMAGE KEYCLOAK_IMAGE
  local started=$SECONDS
  if ! [ -f "$STATE/health-$PROJECT.pid" ] || ! kill -0 "$(cat "$STATE/health-$PROJECT.pid")" 2>/dev/null; then
    setsid "$0" health "$PROJECT" >/dev/null 2>&1 < /dev/null &
    echo $! > "$STATE/health-$PROJECT.pid"
  fi
  # podman 4.3 cannot wait for `service_healthy` (podman-compose skips those conditions), nor start a
  # container that requires an exited one (the migration jobs): so in three steps, each awaited here
  compose up -d --no-build kafka postgres mail >&2
  wait_healthy kafka postgres mail
  say "infrastructure healthy after $((SECONDS - started)) s"
  local service code
  compose up -d --no-build --no-deps "${SERVICES[@]/%/-migrate}" >&2
  for service in "${SERVICES[@]}"; do
    code=$(podman wait "${PROJECT}_${service}-migrate_1")
    [ "$code" = 0 ] || { podman logs --tail 30 "${PROJECT}_${service}-migrate_1" >&2; die "$service-migrate exited $code"; }
  done
  say "databases migrated after $((SECONDS - started)) s"
  local rest=(keycloak)  # it needs only PostgreSQL; the slowest to be ready (30-90 s), so started first
  for service in "${SERVICES[@]}"; do rest+=("$service-api" "$service-worker"); done
  compose up -d --no-build --no-deps "${rest[@]}" >&2
  wait_healthy "${rest[@]:1}"
  compose up -d --no-build --no-deps portal >&2  # after the APIs it calls
  wait_healthy portal keycloak
  say "$PROJECT up and healthy after $((SECONDS - started)) s"
}

cmd_compose_down() {
  PROJECT=${1:-kontor}
  if [ -f "$STATE/health-$PROJECT.pid" ]; then
    kill -- "-$(cat "$STATE/health-$PROJECT.pid")" 2>/dev/null || kill "$(cat "$STATE/health-$PROJECT.pid")" 2>/dev/null || true
    rm -f "$STATE/health-$PROJECT.pid"
  fi
  eval "$(cmd_env)"
  export KAFKA_IMAGE POSTGRES_IMAGE MAIL_IMAGE PYTHON_IMAGE KEYCLOAK_IMAGE
  # with their anonymous volumes (-v), which `down -v` leaves behind
  podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" | xargs -r podman rm -f -v -t 10 >/dev/null
  KONTOR_JWT_SECRET=${KONTOR_JWT_SECRET:-unused-when-stopping-unused-when-stopping} \
    KONTOR_PORTAL_SESSION_SECRET=${KONTOR_PORTAL_SESSION_SECRET:-unused-when-stopping-unused-when-stopping} \
    compose down -v -t 10 >&2 || true
  # what podman-compose may leave: containers, volumes and the network of the project
  podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" | xargs -r podman rm -f >/dev/null
  podman volume ls -q --filter "label=io.podman.compose.project=$PROJECT" | xargs -r podman volume rm -f >/dev/null
  podman network ls -q --filter "label=io.podman.compose.project=$PROJECT" | xargs -r podman network rm -f >/dev/null
}

case "${1:-}" in
  engine) cmd_engine >/dev/null ;;
  base) ENGINE=$(cmd_engine); base_image ;;
  images) cmd_images ;;
  env) cmd_env ;;
  health) cmd_health "${2:-}" ;;
  compose-up) cmd_compose_up "${2:-}" ;;
  compose-down) cmd_compose_down "${2:-}" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
