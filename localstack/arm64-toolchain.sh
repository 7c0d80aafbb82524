#!/bin/sh
# Which Rust `make package` cross-compiles with: it needs the standard library of
# aarch64-unknown-linux-gnu. Prints the route taken on stderr and, on stdout, the shell assignments
# for the Makefile to eval (`toolchain="$(localstack/arm64-toolchain.sh)" && eval "$toolchain"`).
#
#   rustup  when rustup is on PATH and has the target, or `rustup target add` gets it: rustup's own
#           cargo and rustc, as they are (macOS, a machine without root).
#   debian  otherwise, the fallback: Debian's Rust (rustc-web, cargo-web) with its aarch64 std
#           (libstd-rust-web-dev:arm64), installed with apt when missing (as root; otherwise it
#           says what to run), selected with RUSTC=/usr/bin/rustc and /usr/bin first on PATH.
#
# ARM64_TOOLCHAIN=rustup|debian forces a route. ARM64_RUSTUP_TIMEOUT (seconds, default 120) bounds
# the `rustup target add` attempt, so that an offline machine falls back instead of hanging.
set -u
TARGET=aarch64-unknown-linux-gnu
DEBS="rustc-web cargo-web libstd-rust-web-dev:arm64"
APT="dpkg --add-architecture arm64 && apt-get update && apt-get install -y $DEBS"

say() { echo "arm64 toolchain: $*" >&2; }

# True when rustup has the target or adds it (its output kept quiet; only the outcome matters).
rustup_has_target() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$TARGET" && return 0
  limit=
  command -v timeout >/dev/null 2>&1 && limit="timeout ${ARM64_RUSTUP_TIMEOUT:-120}"
  $limit rustup target add "$TARGET" >/dev/null 2>&1
}

# The Debian packages that are not installed, each after a space.
missing_debs() {
  for p in $DEBS; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || printf ' %s' "$p"
  done
}

use_rustup() {
  say "rustup ($(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1), target $TARGET)"
  echo "ARM64_TOOLCHAIN=rustup"
}

use_debian() {
  missing=$(missing_debs)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      say "no toolchain for $TARGET: rustup is missing or cannot add it, and Debian's Rust is not"
      say "installed (missing:$missing)."
      say "Either install rustup (https://rustup.rs) and run: rustup target add $TARGET"
      say "or, as root on Debian, run: $APT"
      say "then run make package again."
      exit 1
    fi
    say "installing$missing with apt"
    { dpkg --add-architecture arm64 && apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y $DEBS; } >&2 || exit 1
  fi
  say "debian ($DEBS; /usr/bin/rustc)"
  echo 'ARM64_TOOLCHAIN=debian; RUSTC=/usr/bin/rustc; export RUSTC; PATH="/usr/bin:$PATH"'
}

case "${ARM64_TOOLCHAIN:-}" in
  rustup)
    rustup_has_target || { say "ARM64_TOOLCHAIN=rustup, but rustup cannot add $TARGET"; exit 1; }
    use_rustup ;;
  debian) use_debian ;;
  "")
    if rustup_has_target; then use_rustup
    else
      command -v rustup >/dev/null 2>&1 && say "rustup could not add $TARGET; falling back to Debian's Rust"
      use_debian
    fi ;;
  *) say "ARM64_TOOLCHAIN must be rustup or debian, not '$ARM64_TOOLCHAIN'"; exit 1 ;;
esac
