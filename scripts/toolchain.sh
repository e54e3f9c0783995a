#!/usr/bin/env bash
# Stops with what a build needs when cargo is missing or older than the
# crate's rust-version, before a make target installs or builds anything.
# usage: scripts/toolchain.sh   (CARGO and RUSTC name other commands)
set -euo pipefail
cd "$(dirname "$0")/.."
need=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
cargo=${CARGO:-cargo}
rustc=${RUSTC:-rustc}
needs="A build needs Rust $need or newer (cargo and rustc; Debian 13's rustc is 1.85, Debian 12's is 1.63: there, install Rust with rustup, https://rustup.rs) and a C compiler (gcc)."
if ! command -v "$cargo" >/dev/null 2>&1 || ! command -v "$rustc" >/dev/null 2>&1; then
  echo "$needs cargo or rustc is not installed (or not in PATH)." >&2
  exit 1
fi
have=$("$rustc" --version | sed -n 's/^rustc \([0-9][0-9.]*\).*/\1/p')
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
  echo "$needs This one is rustc ${have:-of unknown version}." >&2
  exit 1
fi
