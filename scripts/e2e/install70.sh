#!/usr/bin/env bash
# What `make e2e` runs on Zabbix 7.0: Debian trixie's whole 7.0 stack in a
# root of its own, never installed on this machine. The trixie root of `make
# compat-roots` (zabbix_agentd and zabbix_agent2 7.0) is copied to ROOT and
# zabbix-server-pgsql, zabbix-frontend-php (PHP 8.4), php-pgsql and
# PostgreSQL 17 are installed into it with apt inside chroot, in a private
# mount namespace (unshare --mount: the host's /proc and /dev bind-mounted
# there vanish with it, even when killed); zabbix-proxy-sqlite3 conflicts
# with the server package, so it is unpacked beside it (its libraries come
# with apt). No service is started (policy-rc.d), nothing is written to /etc.
# usage: scripts/e2e/install70.sh ROOT     (ROOT: e.g. target/e2e/root-7.0)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${1:?usage: $0 ROOT}
mkdir -p "$(dirname "$root")"
root=$(realpath "$root")
compat=target/compat/roots
packages=(zabbix-server-pgsql zabbix-frontend-php php-pgsql postgresql locales fonts-dejavu-core)
proxy=zabbix-proxy-sqlite3
stamp="${packages[*]} $proxy"

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e (7.0): chroot and unshare need root" >&2
  exit 1
fi
if [ -f "$root/.exalate-e2e-ready" ] && [ "$(cat "$root/.exalate-e2e-ready")" = "$stamp" ]; then
  echo "zabbix 7.0 server, proxy and frontend: ready in $root ($(chroot "$root" zabbix_server -V | head -1))"
  exit 0
fi
scripts/deps.sh debootstrap:debootstrap
scripts/compat-roots.sh "$compat" trixie
partial=$root.partial
rm -rf --one-file-system "$partial"
cp -a "$compat/trixie" "$partial"
rm -f "$partial/.exalate-compat-ready"
printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
chmod 0755 "$partial/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$partial/etc/resolv.conf"
# In the private namespace only: /proc and /dev for apt and the maintainer scripts.
unshare --mount --propagation private bash -euo pipefail -c '
  root=$1; shift
  mount --rbind /proc "$root/proc"
  mount --rbind /dev "$root/dev"
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C
  chroot "$root" apt-get update -qq
  chroot "$root" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  proxy=$(chroot "$root" apt-cache depends '"$proxy"' | sed -n "s/^ *Depends: \(lib[^ <>]*\)$/\1/p" | sort -u)
  chroot "$root" apt-get install -y -qq --no-install-recommends $proxy >/dev/null
  chroot "$root" sh -c "cd /tmp && apt-get download -qq '"$proxy"'"
' e2e-install "$partial" "${packages[@]}"
dpkg-deb -x "$partial"/tmp/${proxy}_*.deb "$partial/proxy.unpacked"
cp -a "$partial/proxy.unpacked/usr/sbin/zabbix_proxy" "$partial/usr/sbin/zabbix_proxy"
rm -rf "$partial/proxy.unpacked" "$partial"/tmp/*.deb
chroot "$partial" sh -c 'localedef -i en_US -f UTF-8 en_US.UTF-8' 2>/dev/null || true
echo "$stamp" >"$partial/.exalate-e2e-ready"
# What run.sh keys its cached database on, as install.sh writes it for 6.0.
chroot "$partial" dpkg-query -W -f '${Package} ${Version}\n' zabbix-server-pgsql zabbix-frontend-php >"$partial/.versions"
rm -rf --one-file-system "$root"
mv "$partial" "$root"
echo "zabbix 7.0 server, proxy and frontend installed in $root:"
chroot "$root" dpkg-query -W -f '  ${Package} ${Version}\n' zabbix-server-pgsql zabbix-frontend-php zabbix-agent zabbix-agent2 postgresql php8.4-cli 2>/dev/null || true
chroot "$root" zabbix_proxy -V | head -1 | sed 's/^/  /'
