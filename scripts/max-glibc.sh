#!/usr/bin/env bash
# The highest GLIBC symbol version a shared object needs (readelf: any CPU's ELF).
# usage: scripts/max-glibc.sh LIB [CEILING]   with CEILING, fails above it
set -euo pipefail
lib=$1 ceiling=${2:-}
max=$(readelf -W --dyn-syms "$lib" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
if [ -z "$max" ]; then
  echo "$lib: no GLIBC symbol versions found (not a glibc build?)" >&2
  exit 1
fi
echo "$lib: highest GLIBC symbol version needed: $max"
if [ -n "$ceiling" ] && [ "$(printf '%s\n%s\n' "$max" "$ceiling" | sort -V | tail -n 1)" != "$ceiling" ]; then
  echo "$lib needs GLIBC $max, above $ceiling: it would not load on older systems" >&2
  exit 1
fi
