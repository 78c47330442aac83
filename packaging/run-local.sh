#!/usr/bin/env bash
# Builds auditrelay and runs its main job on this machine. Until the relay's listeners land,
# that is `auditrelay parse` on the bundled capture of real device messages: one JSON record per
# message on stdout, a summary on stderr. Extra arguments go to `auditrelay parse`.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
cargo build --release --locked --bin auditrelay >&2
exec "$CARGO_TARGET_DIR/release/auditrelay" parse conf/samples/devices.log "$@"
