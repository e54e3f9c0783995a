#!/usr/bin/env bash
# cargo-zigbuild and zig, pinned, in a Python venv (for `make release-compat`).
# Both come from PyPI: the cargo-zigbuild wheel carries its prebuilt binary and
# pulls the ziglang wheel (zig itself), so nothing is compiled here; `cargo
# install cargo-zigbuild` would compile ~150 crates on a 2-core machine.
# usage: scripts/zig-tools.sh VENV_DIR CARGO_ZIGBUILD_VERSION ZIGLANG_VERSION
set -euo pipefail
venv=$1 zigbuild_version=$2 zig_version=$3
stamp=$venv/.versions
want="cargo-zigbuild==$zigbuild_version ziglang==$zig_version"
if [ -x "$venv/bin/cargo-zigbuild" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian's python3 keeps venv's pip in a separate package.
  echo "installing: python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  python=/usr/bin/python3
fi
rm -rf "$venv"
"$python" -m venv "$venv"
echo "installing $want into $venv"
"$venv/bin/pip" install -q --disable-pip-version-check $want
echo "$want" >"$stamp"
