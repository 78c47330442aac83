#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs on a fresh Debian machine: formatting,
# clippy with warnings as errors, then every unit, property, conformance and integration test,
# the latter against real peers (logger, openssl, loggen, rsyslog, promtool).
# The conformance test reads the peer vectors from ../shared/conformance beside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/dev-env.sh
ensure_rust
ensure_build_deps
ensure_test_peers
if [[ ! -d ../shared/conformance && -z ${AUDITRELAY_CONFORMANCE_DIR:-} ]]; then
  echo "tests/run.sh: ../shared/conformance is missing (set AUDITRELAY_CONFORMANCE_DIR)" >&2
  exit 1
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
