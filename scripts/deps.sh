#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# usage: scripts/deps.sh PACKAGE:COMMAND ...   (COMMAND, or a path, tells whether it is there;
#        a bare PACKAGE, e.g. a library, is looked up in dpkg's database)
set -euo pipefail
missing=()
for spec in "$@"; do
  if [[ $spec != *:* ]]; then
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$spec" 2>/dev/null)" = installed ] || missing+=("$spec")
    continue
  fi
  pkg=${spec%%:*} cmd=${spec#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -e "$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${missing[@]}" >/dev/null
