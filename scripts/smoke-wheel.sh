#!/usr/bin/env bash
# A new user's first run, from the built wheel: build it, install it with NO extras into a fresh venv (outside the
# repository), import every module the base server uses, serve a small local Delta table with `lakegate serve`
# and read it with the official delta-sharing client. Catches a dependency the package uses but does not declare
# (the repository's .venv has every extra, so the test suite cannot).
#
# Usage: scripts/smoke-wheel.sh            (uses .venv/bin/python for deltalake and the official client)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_PY=${REPO_PY:-.venv/bin/python}
BASE_PY=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/lakegate-smoke.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "smoke-wheel: $*"; }

step "building the wheel"
"$REPO_PY" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }

step "installing it with no extras into a fresh venv"
"$BASE_PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/lakegate-*.whl >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }

step "importing every module of the base package"
"$work/venv/bin/python" - <<'EOF'
import importlib
import pkgutil

import lakegate

# Sub-packages that need an extra (azure, gcp, client), Alembic's scripts (run by Alembic only), and
# `python -m lakegate` (which runs the CLI).
OPTIONAL = ("lakegate.cloud.azure", "lakegate.cloud.gcp", "lakegate.client", "lakegate.catalog.migrations")
names = [
    m.name
    for m in pkgutil.walk_packages(lakegate.__path__, "lakegate.")
    if not m.name.startswith(OPTIONAL) and m.name != "lakegate.__main__"
]
for name in names:
    importlib.import_module(name)
print(f"smoke-wheel: imported {len(names)} modules")
EOF

step "an optional feature without its extra stops the start with one line (exit 2)"
expect_extra() {  # $1: extra, $2: YAML lines
  printf 'version: 1\n%s\n' "$2" >"$work/needs-$1.yaml"
  set +e
  "$work/venv/bin/lakegate" serve --config "$work/needs-$1.yaml" >"$work/needs-$1.log" 2>&1
  code=$?
  set -e
  if [ "$code" -ne 2 ] || grep -q Traceback "$work/needs-$1.log" || ! grep -q "lakegate\[$1\]" "$work/needs-$1.log"; then
    cat "$work/needs-$1.log"
    echo "smoke-wheel: expected one error line naming the '$1' extra and exit code 2 (got $code)"
    exit 1
  fi
}
table_at() { printf 'shares:\n- name: s\n  schemas:\n  - name: d\n    tables:\n    - name: t\n      location: %s' "$1"; }
expect_extra azure "$(table_at abfss://c@account.dfs.core.windows.net/t)"
expect_extra gcp "$(table_at gs://bucket/t)"
expect_extra postgres "database: postgresql://lakegate@127.0.0.1:1/lakegate"

step "serving a local Delta table"
port=$("$REPO_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$REPO_PY" - "$work" "$port" <<'EOF'
import sys

import pyarrow as pa
from deltalake import write_deltalake

work, port = sys.argv[1], int(sys.argv[2])
write_deltalake(f"{work}/table", pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}))
write_deltalake(f"{work}/table", pa.table({"id": [4], "name": ["d"]}), mode="append")
with open(f"{work}/server.yaml", "w") as f:
    f.write(
        "version: 1\n"
        f"host: 127.0.0.1\nport: {port}\n"
        "authorization:\n  bearerToken: smoke-test-token-0123456789\n"
        "console:\n  enabled: true\n"
        "shares:\n- name: share\n  schemas:\n  - name: schema\n    tables:\n"
        f"    - name: table\n      location: {work}/table\n"
    )
with open(f"{work}/profile.share", "w") as f:
    f.write(
        '{"shareCredentialsVersion": 1, '
        f'"endpoint": "http://127.0.0.1:{port}/delta-sharing", '
        '"bearerToken": "smoke-test-token-0123456789"}'
    )
EOF
"$work/venv/bin/lakegate" serve --config "$work/server.yaml" --log-format text >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  if "$REPO_PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "smoke-wheel: the server did not start"; exit 1; }
  sleep 0.2
done

step "reading it with the official client"
"$REPO_PY" - "$work" <<'EOF' || { cat "$work/server.log"; exit 1; }
import sys

import delta_sharing

work = sys.argv[1]
frame = delta_sharing.load_as_pandas(f"{work}/profile.share#share.schema.table")
assert sorted(frame["id"]) == [1, 2, 3, 4], frame
assert sorted(frame["name"]) == ["a", "b", "c", "d"], frame
print(f"smoke-wheel: the official client read {len(frame)} rows")
EOF
step "the console's templates and stylesheet are in the wheel"
"$REPO_PY" - "$port" <<'EOF' || { cat "$work/server.log"; exit 1; }
import sys
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}/console"
page = urllib.request.urlopen(f"{base}/sign-in", timeout=10).read().decode()
css = urllib.request.urlopen(f"{base}/lakegate.css", timeout=10).read().decode()
assert "Admin token" in page and ".topbar" in css, (page[:200], css[:200])
print("smoke-wheel: the console's sign-in page and stylesheet are served")
EOF
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
step "ok"
