# Sourced by the README's commands (packaging/run-local.sh, tests/run.sh): makes sure a fresh
# Debian machine has what building and testing auditrelay needs, installing what is missing.

# Builds go to a directory outside the clone, so that a new clone (and CI) reuses earlier work;
# RocksDB's C++ alone takes 10-20 minutes to build from nothing.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditrelay-target}"

apt_updated=""

# ensure_apt PACKAGE... installs the Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  if [[ -z $apt_updated ]]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  echo "installing: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

# ensure_rust makes sure cargo (Rust 1.85 or newer) is on PATH.
ensure_rust() {
  [[ -d $HOME/.cargo/bin ]] && export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null; then
    # Debian 13 packages rustup; older releases need https://rustup.rs by hand.
    if apt-cache show rustup >/dev/null 2>&1; then
      ensure_apt rustup
      rustup default stable
    else
      echo "cargo is missing: install Rust 1.85 or newer with rustup (https://rustup.rs)" >&2
      exit 1
    fi
  fi
  command -v cc >/dev/null || ensure_apt build-essential
}

# ensure_build_deps: what compiling auditrelay needs beyond Rust (RocksDB's bindings need libclang).
ensure_build_deps() {
  ensure_apt libclang-dev
  command -v c++ >/dev/null || ensure_apt g++
}

# release_build builds the release binary. On CPUs with SSE4.2 and PCLMUL (x86-64 since about
# 2010) RocksDB's C++ is compiled for them: hardware CRC32C for every WAL write and block read,
# which the portable build spends a large share of its time on. Only release builds set the
# flag (it changes librocksdb-sys alone), so the test build that CI reuses is not rebuilt.
release_build() {
  if grep -qw sse4_2 /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then
    export CXXFLAGS_x86_64_unknown_linux_gnu="${CXXFLAGS_x86_64_unknown_linux_gnu:--msse4.2 -mpclmul}"
  fi
  cargo build --release --locked --bin auditrelay >&2
}

# harness_ready prepares a run of the shared load harness (../shared/bench, or
# $AUDITRELAY_SHARED): Rust and build dependencies, the release binary, and the harness's own
# peers; sets `shared` to the harness's directory.
harness_ready() {
  ensure_rust
  ensure_build_deps
  shared=$(cd "${AUDITRELAY_SHARED:-../shared}" && pwd)
  release_build
  [[ -x ${RSYSLOG_ROOT:-/tmp/rsyslog-root}/usr/sbin/rsyslogd ]] || "$shared/bench/setup.sh"
}

# Where test peers that cannot be apt-installed side by side are unpacked.
export AUDITRELAY_PEERS_DIR="${AUDITRELAY_PEERS_DIR:-/var/tmp/auditrelay-peers}"
export AUDITRELAY_RSYSLOG_ROOT="$AUDITRELAY_PEERS_DIR/rsyslog-root"

# ensure_test_peers installs the real clients and peers the tests run against: logger
# (util-linux), openssl, loggen (syslog-ng-core), promtool (prometheus), fusepy (for
# tests/peers/faultyfs.py, a filesystem whose fsync can be made to fail), and rsyslog with its
# RELP module. Debian's rsyslog conflicts with syslog-ng-core, so rsyslog is unpacked with
# dpkg-deb into $AUDITRELAY_RSYSLOG_ROOT instead of installed; no service is started.
ensure_test_peers() {
  ensure_apt bsdutils openssl syslog-ng-core prometheus python3-fusepy \
    libestr0 libfastjson4 liblognorm5 librelp0 libuuid1 libzstd1 zlib1g libsystemd0 libgnutls30 libssl3
  if [[ ! -x $AUDITRELAY_RSYSLOG_ROOT/usr/sbin/rsyslogd || ! -e $AUDITRELAY_RSYSLOG_ROOT/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so ]]; then
    local debs="$AUDITRELAY_PEERS_DIR/debs"
    mkdir -p "$debs" "$AUDITRELAY_RSYSLOG_ROOT"
    [[ -n $apt_updated ]] || { apt-get update -qq; apt_updated=1; }
    (cd "$debs" && rm -f rsyslog*.deb && apt-get download rsyslog rsyslog-relp >/dev/null)
    for deb in "$debs"/rsyslog*.deb; do dpkg-deb -x "$deb" "$AUDITRELAY_RSYSLOG_ROOT"; done
  fi
}
