#!/usr/bin/env bash
# Installs the real services the integration tests start themselves (tests/services/):
# Ceph RGW (S3 + STS), PostgreSQL, openssl (Azurite's TLS certificate) and Chromium (the console's browser tests,
# driven by Playwright at /usr/bin/chromium) from Debian, and Azurite from npm into .test-services/node
# (git-ignored), and wrk (make bench's load generator). Idempotent: a second run does no network access.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AZURITE_VERSION="3.35.0"  # 3.35 is what the tests were verified with (user-delegation SAS, OAuth over HTTPS).
NODE_PREFIX="$ROOT/.test-services/node"

have_postgres_server() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

missing=()
for bin in radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool openssl wrk; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
have_postgres_server || missing+=("postgresql")
[[ -x /usr/bin/chromium ]] || missing+=("chromium")
command -v node >/dev/null 2>&1 || missing+=("node")
command -v npm >/dev/null 2>&1 || missing+=("npm")

if ((${#missing[@]})); then
    echo "install-test-services: missing ${missing[*]}; installing Debian packages" >&2
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    packages=(radosgw ceph-mon ceph-osd ceph-common postgresql openssl chromium fonts-dejavu-core wrk)
    # Keep a Node.js that is already there (it may be newer than Debian's); install Debian's otherwise.
    command -v node >/dev/null 2>&1 || packages+=(nodejs)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

have_postgres_server || { echo "install-test-services: no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "install-test-services: no /usr/bin/chromium" >&2; exit 1; }

installed_version() {
    node -e 'process.stdout.write(require(process.argv[1]).version)' \
        "$NODE_PREFIX/node_modules/azurite/package.json" 2>/dev/null || true
}
if [[ "$(installed_version)" != "$AZURITE_VERSION" || ! -x "$NODE_PREFIX/node_modules/.bin/azurite-blob" ]]; then
    echo "install-test-services: installing azurite@$AZURITE_VERSION into $NODE_PREFIX" >&2
    mkdir -p "$NODE_PREFIX"
    # A package.json of its own so npm never walks up into (or writes to) the repository's root.
    [[ -f "$NODE_PREFIX/package.json" ]] || echo '{"name": "lakegate-test-services", "private": true}' >"$NODE_PREFIX/package.json"
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error --save-exact "azurite@$AZURITE_VERSION"
    [[ "$(installed_version)" == "$AZURITE_VERSION" ]] || { echo "azurite install failed" >&2; exit 1; }
fi

echo "install-test-services: ready (Ceph $(radosgw --version | awk '{print $3}'), PostgreSQL" \
    "$(basename "$(dirname "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1)")")"), azurite $AZURITE_VERSION)"
