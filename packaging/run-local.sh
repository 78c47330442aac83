#!/usr/bin/env bash
# Builds auditrelay and runs the relay on its embedded single-node default (conf/auditrelay.toml):
# UDP and TCP on 127.0.0.1:5514, TLS on 6514 (self-signed until configured), RELP on 2514,
# metrics on http://127.0.0.1:9514/metrics. The store goes to ./data unless
# AUDITRELAY_DATA_DIR says otherwise. Extra arguments go to `auditrelay run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
ensure_build_deps
release_build
exec "$CARGO_TARGET_DIR/release/auditrelay" run --config conf/auditrelay.toml \
  --data-dir "${AUDITRELAY_DATA_DIR:-$PWD/data}" "$@"
