#!/usr/bin/env bash
# What `make e2e` runs, installed without touching /etc: PostgreSQL and PHP
# (with the extensions the frontend needs) from Debian as usual; Debian's
# zabbix_server (pgsql), zabbix_proxy (sqlite3) and frontend unpacked from
# their .debs into ROOT, because the server and proxy packages conflict
# with each other and the frontend reads its config only from /etc.
# usage: scripts/e2e/install.sh ROOT        (ROOT: e.g. target/e2e/root)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${1:?usage: $0 ROOT}
zabbix_debs=(zabbix-server-pgsql zabbix-proxy-sqlite3 zabbix-frontend-php)

initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
# locales: the en_US source the frontend's private locale is built from
# (lesson 2); php-*: the extensions the frontend needs (its own Depends).
scripts/deps.sh "postgresql:${initdb:-/usr/lib/postgresql/none/bin/initdb}" php-cli:php \
  php-pgsql php-gd php-bcmath php-mbstring php-xml \
  locales:/usr/share/i18n/locales/en_US fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
  zabbix-agent:/usr/sbin/zabbix_agentd

# Unpacked once per version: ROOT/.versions lists what is there.
versions=$(apt-cache policy "${zabbix_debs[@]}" 2>/dev/null | awk '/^[^ ]/{p=$1} /Candidate:/{print p, $2}')
if [ -n "$versions" ] && [ "$versions" = "$(cat "$root/.versions" 2>/dev/null)" ]; then
  echo "zabbix server, proxy and frontend: already unpacked in $root"
  exit 0
fi
debs=$root.debs
rm -rf "$root" "$debs"
mkdir -p "$root" "$debs"
(cd "$debs" && apt-get download -q "${zabbix_debs[@]}" 2>/dev/null) ||
  { apt-get update -qq && (cd "$debs" && apt-get download -q "${zabbix_debs[@]}" 2>/dev/null); }
# The shared libraries zabbix_server and zabbix_proxy link against.
libs=$(for deb in "$debs"/*.deb; do dpkg-deb -f "$deb" Depends; done |
  tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g' | grep '^lib' | sort -u)
# shellcheck disable=SC2086 # one package a word
scripts/deps.sh $libs
for deb in "$debs"/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" --exclude=./etc --exclude=./lib \
    --exclude=./usr/lib --exclude=./usr/share/doc --exclude=./usr/share/man
done
# Lesson 1: the frontend reads its config from /etc only; this copy reads its own conf/.
sed -i "s|const CONFIG_FILE_PATH = '/etc/zabbix/zabbix.conf.php';|const CONFIG_FILE_PATH = __DIR__.'/../../../conf/zabbix.conf.php';|" \
  "$root/usr/share/zabbix/include/classes/core/CConfigFile.php"
grep -q "__DIR__.'/../../../conf/zabbix.conf.php'" "$root/usr/share/zabbix/include/classes/core/CConfigFile.php" ||
  { echo "the frontend's CConfigFile.php changed: cannot move its config out of /etc" >&2; exit 1; }
# The frontend's font link is relative to /usr/share: point it at the real one.
ln -sf /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$root/usr/share/zabbix/assets/fonts/DejaVuSans.ttf"
rm -rf "$debs"
echo "$versions" > "$root/.versions"
echo "zabbix server, proxy and frontend unpacked in $root:"
sed 's/^/  /' "$root/.versions"
