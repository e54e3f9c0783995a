#!/usr/bin/env bash
# A passive check over the agent protocol, in bash alone (Debian's agent
# package has no zabbix_get): ZBXD\1, u32 LE length, u32 reserved, key.
# usage: zbx_get.sh PORT KEY   prints the value, or "ZBX_NOTSUPPORTED: reason"
set -euo pipefail
export LC_ALL=C
port=$1 key=$2 len=${#2}
exec 3<>"/dev/tcp/127.0.0.1/$port"
le32=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len & 255)) $((len >> 8 & 255)) $((len >> 16 & 255)) $((len >> 24 & 255)))
printf "ZBXD\\x01${le32}\\x00\\x00\\x00\\x00%s" "$key" >&3
reply=$(tail -c +14 <&3 | tr '\0' '\n')
exec 3<&-
case "$reply" in
  ZBX_NOTSUPPORTED*) printf 'ZBX_NOTSUPPORTED: %s\n' "$(printf '%s' "$reply" | tail -n +2)" ;;
  *) printf '%s\n' "$reply" ;;
esac
