# Shared set-up for the project's scripts: a virtualenv with pinned packages, Azurite from npm, and
# Debian's Chromium for the management pane's browser tests.
# Each step is skipped when its inputs have not changed since it last ran.

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or later is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

ensure_python_env() {
  local requirements=$1 stamp=.venv/.installed-$1
  if [ ! -x .venv/bin/python ]; then
    local python; python=$(pick_python)
    echo "== creating .venv with $python"
    "$python" -m venv .venv
  fi
  local digest; digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "== installing $requirements"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}

ensure_azurite() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "Node.js 18+ and npm are needed for Azurite (local Azure Storage)" >&2
    return 1
  fi
  local digest; digest=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.installed 2>/dev/null)" != "$digest" ]; then
    echo "== installing Azurite (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$digest" > node_modules/.installed
  fi
}

ensure_chromium() {
  # The pane's browser tests (tests/pane) drive Debian's Chromium; Playwright's own browser download
  # is not used. Installed once when missing (as root with apt, as in CI); quick when present.
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "Debian's chromium is missing: the pane's browser tests need it (sudo apt-get install chromium)" >&2
  fi
}
