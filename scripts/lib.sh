# Shared set-up steps for scripts/run and scripts/test (sourced, not executed).
# Works on a fresh Debian/Ubuntu machine with only Python 3.11, pip and apt.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "castiel: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A short id for this checkout, so several checkouts (or CI runs) on one machine use their
# own test databases, Redis key prefixes and queue names.
checkout_id() { printf '%s' "$ROOT" | sha1sum | cut -c1-8; }

# ensure_python_env base|dev: a venv with the pinned requirements, reinstalled only when the
# requirement files change.
ensure_python_env() {
  local kind=$1 digest installed
  if [ ! -x "$PY" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
    "$PY" -m pip install -q --upgrade pip
  fi
  digest=$(cat "$ROOT"/requirements/*.txt | sha1sum | cut -c1-16)
  installed=$(cat "$VENV/.castiel-requirements" 2>/dev/null || true)
  # dev includes base, so a dev install also satisfies base.
  if [ "$installed" != "$digest-$kind" ] && [ "$installed" != "$digest-dev" ]; then
    say "installing Python packages (requirements/$kind.txt)"
    "$PY" -m pip install -q -r "$ROOT/requirements/$kind.txt"
    echo "$digest-$kind" > "$VENV/.castiel-requirements"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.2; done
  echo "castiel: nothing is listening on 127.0.0.1:$1 after 20 s" >&2; return 1
}

ensure_postgres() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port 5432
  # Tests connect over TCP as postgres/postgres (trust-auth machines ignore the password).
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
}

ensure_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379
}

ensure_node() {
  command -v npm >/dev/null && return 0
  apt_install nodejs npm
}

# npm packages used by test servers (json-server, cosmosdb-server, octokit fixtures).
ensure_node_packages() {
  local dir="$ROOT/tests/node"
  [ -f "$dir/package.json" ] || return 0
  ensure_node
  local stamp
  stamp=$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha1sum | cut -c1-16)
  if [ "$(cat "$dir/node_modules/.castiel-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing npm packages for test servers"
    (cd "$dir" && if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else
      npm install --silent --no-audit --no-fund; fi)
    echo "$stamp" > "$dir/node_modules/.castiel-stamp"
  fi
}

ensure_chromium() {
  command -v chromium >/dev/null && return 0
  apt_install chromium
}

# promtool checks and unit-tests the Prometheus alert rules (deploy/prometheus/).
ensure_promtool() {
  command -v promtool >/dev/null && return 0
  apt_install prometheus
}
