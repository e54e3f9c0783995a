#!/usr/bin/env bash
# Debian chroots holding each suite's real zabbix-agent, for `make compat-test`:
# bullseye 5.0, bookworm 6.0, trixie 7.0, whose zabbix-agent2 also runs the
# agent 2 plugin (bookworm's 6.0 agent 2 comes with the test deps; not in
# foreign roots). Built in parallel with debootstrap
# (minbase, about 30 s each) and kept: a finished chroot is reused until
# removed (`make compat-clean`). Nothing is mounted into them.
# With --arch ARCH (arm64), each is another CPU's sysroot: debootstrap's
# first stage only, every downloaded .deb unpacked, its agent run under
# qemu-user (qemu-ARCH-static -L ROOT), never chrooted into.
# usage: scripts/compat-roots.sh [--arch ARCH] DIR SUITE...   (as root)
set -euo pipefail
foreign=() qemu=""
if [ "${1:-}" = --arch ]; then
  foreign=(--arch="$2" --foreign)
  qemu=qemu-$(case $2 in arm64) echo aarch64 ;; *) echo "$2" ;; esac)-static
  shift 2
fi
dir=$1
shift
# Suites leave deb.debian.org for the archive some time after their end of life.
mirrors=(${COMPAT_MIRRORS:-http://deb.debian.org/debian http://archive.debian.org/debian})

if [ "$(id -u)" -ne 0 ]; then
  echo "compat-roots: debootstrap and chroot need root" >&2
  exit 1
fi
mkdir -p "$dir"

# Removes a tree, first unmounting anything an interrupted debootstrap left
# mounted in it; never crosses into another file system.
remove_tree() {
  local path=$1 mnt
  [ -e "$path" ] || return 0
  path=$(realpath "$path")
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v p="$path/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf --one-file-system "$path"
}

# A foreign root: what debootstrap's first stage downloaded, all unpacked.
unpack_foreign() {
  local deb
  [ ${#foreign[@]} -gt 0 ] || return 0
  for deb in "$1"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$1" || return 1
  done
}

agent_version() {
  if [ -n "$qemu" ]; then
    "$qemu" -L "$1" "$1/usr/sbin/zabbix_agentd" -V
  else
    chroot "$1" /usr/sbin/zabbix_agentd -V
  fi | head -1 | awk '{print $NF}'
}

# The packages of a suite's root.
packages() {
  case $1 in
    trixie) [ ${#foreign[@]} -gt 0 ] && echo zabbix-agent || echo zabbix-agent,zabbix-agent2 ;;
    *) echo zabbix-agent ;;
  esac
}

# Whether a finished root holds every package it should.
complete() {
  local root=$dir/$1
  [ -x "$root/usr/sbin/zabbix_agentd" ] && [ -f "$root/.exalate-compat-ready" ] || return 1
  case $(packages "$1") in
    *zabbix-agent2*) [ -x "$root/usr/sbin/zabbix_agent2" ] ;;
  esac
}

build() {
  local suite=$1 root=$dir/$1 partial=$dir/$1.partial log=$dir/$1.log mirror version
  remove_tree "$partial"
  for mirror in "${mirrors[@]}"; do
    if debootstrap "${foreign[@]}" --variant=minbase --include="$(packages "$suite")" "$suite" "$partial" "$mirror" >"$log" 2>&1 &&
      unpack_foreign "$partial"; then
      version=$(agent_version "$partial")
      echo "$version" >"$partial/.exalate-compat-ready"
      remove_tree "$root"
      mv "$partial" "$root"
      echo "$suite: zabbix_agentd $version, from $mirror"
      return 0
    fi
    remove_tree "$partial"
  done
  echo "$suite: debootstrap failed; the end of $log:" >&2
  tail -n 20 "$log" >&2
  return 1
}

pids=()
suites=()
for suite in "$@"; do
  if complete "$suite"; then
    echo "$suite: cached, zabbix_agentd $(cat "$dir/$suite/.exalate-compat-ready")"
    continue
  fi
  echo "$suite: debootstrap --variant=minbase --include=$(packages "$suite") ..."
  build "$suite" &
  pids+=("$!")
  suites+=("$suite")
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
done
exit "$failed"
