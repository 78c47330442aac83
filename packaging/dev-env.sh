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
