#!/usr/bin/env bash
# make package-test: the packages as an administrator meets them, on this
# machine (Debian, as root; it installs and purges exalate-zabbix):
#  - lintian on the .deb; the .rpm's paths, modes, scriptlets and dependencies,
#    its payload extracted with rpm2cpio | cpio, and its module loaded by the agent;
#  - the arm64 .deb and aarch64 .rpm: lintian, the same paths and modes as the
#    amd64 ones, Architecture, Depends/Requires, the module's ELF machine and
#    highest GLIBC; both modules loaded by Debian's arm64 agent (qemu-user);
#  - dpkg -i, then Debian's stock zabbix_agentd with its stock config (only the
#    module's config path changed, to the demo node's) answers every item over
#    TCP, including every key the installed template polls; then Debian's
#    stock zabbix_agent2 the same through the plugin, with agentd's answers;
#  - the installed template passes Zabbix 6.0's own import validator;
#  - dpkg -r (both agents still start; the conffile stays), dpkg -P (nothing stays).
# Waits poll with a deadline; the secret is asserted absent from every output.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ "$(id -u)" -eq 0 ] || { echo "package-test installs a package: run it as root" >&2; exit 1; }
started=$(date +%s)

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
deb=target/packages/exalate-zabbix_${version}-1_$(dpkg --print-architecture).deb
rpm=target/packages/exalate-zabbix-${version}-1.$(uname -m).rpm
arm64_deb=target/packages/exalate-zabbix_${version}-1_arm64.deb
arm64_rpm=target/packages/exalate-zabbix-${version}-1.aarch64.rpm
# Debian's arm64 agent, run under qemu-user (make packages builds this sysroot).
arm64_root=target/compat/roots-arm64/bookworm
glibc_floor=2.28
node_bin=target/release/fake-exalate-node
agentd=/usr/sbin/zabbix_agentd
stock_conf=/etc/zabbix/zabbix_agentd.conf
agent_log=/var/log/zabbix-agent/zabbix_agentd.log
agent2=/usr/sbin/zabbix_agent2
stock_conf2=/etc/zabbix/zabbix_agent2.conf
agent2_log=/var/log/zabbix/zabbix_agent2.log
plugin=/usr/sbin/zabbix-agent2-plugin/zabbix-agent2-plugin-exalate
agent2_snippet=/etc/zabbix/zabbix_agent2.d/plugins.d/exalate.conf
# The documentation pages, shipped in /usr/share/doc/exalate-zabbix/ under these paths.
doc_pages=(README.md docs/*.md)
port=10050
for f in "$deb" "$rpm" "$arm64_deb" "$arm64_rpm" "$arm64_root/usr/sbin/zabbix_agentd" "$node_bin" "$agentd" "$stock_conf" \
  "$agent2" "$stock_conf2"; do
  [ -e "$f" ] || { echo "missing $f (run: make package-test)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/exalate-zabbix-package-test.XXXXXX)
agent_pid="" node_pid="" made_run_dir=""
# The stock agent logs to the stock log file: put it back as it was afterwards.
log_size=$(stat -c %s "$agent_log" 2>/dev/null || echo none)
log2_size=$(stat -c %s "$agent2_log" 2>/dev/null || echo none)
passed=0

cleanup() {
  local rc=$?
  stop_agent || true
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  if dpkg-query -W -f='${db:Status-Abbrev}' exalate-zabbix 2>/dev/null | grep -q '^[ir]'; then
    dpkg -P exalate-zabbix >/dev/null 2>&1 || true
  fi
  [ -z "$made_run_dir" ] || rm -rf /run/zabbix
  if [ "$log_size" = none ]; then rm -f "$agent_log"; else truncate -s "$log_size" "$agent_log" 2>/dev/null || true; fi
  if [ "$log2_size" = none ]; then rm -f "$agent2_log"; else truncate -s "$log2_size" "$agent2_log" 2>/dev/null || true; fi
  rm -rf "$work"
  [ "$rc" -eq 0 ] || echo "package-test: $passed passed, 1 failed"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok  $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }
# expect WHAT ACTUAL EXPECTED
expect() { [ "$2" = "$3" ] && ok "$1" || fail "$1: got [$2], expected [$3]"; }
# expect_match WHAT ACTUAL GLOB
# shellcheck disable=SC2053 # the third argument is a glob on purpose
expect_match() { [[ $2 == $3 ]] && ok "$1" || fail "$1: got [$2], expected to match [$3]"; }

secret=$(head -c 32 /dev/urandom | base64)
all_output=$work/all-output.txt
: > "$all_output"
# Everything shown or compared goes through here, to be checked for the secret.
record() { printf '%s\n' "$1" >> "$all_output"; printf '%s' "$1"; }
get() { record "$(scripts/zbx_get.sh "$port" "$1" 2>&1)"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# poll DEADLINE_SECONDS WHAT COMMAND...: runs COMMAND until it succeeds.
poll() {
  local deadline=$(( $(date +%s) + $1 )) what=$2
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within the deadline"
    sleep 0.1
  done
}

# The stock agent: stock config, user zabbix (it drops root itself), port 10050.
start_agent() { # [EXALATE_ZABBIX_CONFIG value]
  port_open && fail "port $port is already in use: stop the running Zabbix agent first"
  if [ -n "${1:-}" ]; then
    EXALATE_ZABBIX_CONFIG=$1 "$agentd" -f -c "$stock_conf" </dev/null >/dev/null 2>&1 &
  else
    "$agentd" -f -c "$stock_conf" </dev/null >/dev/null 2>&1 &
  fi
  agent_pid=$!
  agent_ready() {
    kill -0 "$agent_pid" 2>/dev/null || fail "zabbix_agentd exited at start; log: $(tail -n 20 "$agent_log")"
    [ "$(scripts/zbx_get.sh "$port" agent.ping 2>/dev/null)" = 1 ]
  }
  poll 30 "zabbix_agentd answering agent.ping" agent_ready
}
# The stock agent 2: stock config, as user zabbix (its systemd unit's User=).
start_agent2() { # [EXALATE_ZABBIX_CONFIG value]
  port_open && fail "port $port is already in use: stop the running Zabbix agent first"
  # In /, as systemd starts it: agent 2 resolves its relative Include from the
  # working directory, which user zabbix may not be able to enter (a 0700 clone).
  local as_zabbix=(setpriv --reuid=zabbix --regid=zabbix --init-groups)
  if [ -n "${1:-}" ]; then
    (cd / && EXALATE_ZABBIX_CONFIG=$1 exec "${as_zabbix[@]}" "$agent2" -c "$stock_conf2") </dev/null >/dev/null 2>"$work/agent2.stderr" &
  else
    (cd / && exec "${as_zabbix[@]}" "$agent2" -c "$stock_conf2") </dev/null >/dev/null 2>"$work/agent2.stderr" &
  fi
  agent_pid=$!
  agent2_ready() {
    kill -0 "$agent_pid" 2>/dev/null ||
      fail "zabbix_agent2 exited at start: $(cat "$work/agent2.stderr"; tail -n 20 "$agent2_log")"
    [ "$(scripts/zbx_get.sh "$port" agent.ping 2>/dev/null)" = 1 ]
  }
  poll 30 "zabbix_agent2 answering agent.ping" agent2_ready
}
stop_agent() {
  [ -n "$agent_pid" ] || return 0
  kill -TERM "$agent_pid" 2>/dev/null || true
  agent_gone() { ! kill -0 "$agent_pid" 2>/dev/null && ! port_open; }
  poll 30 "zabbix_agentd stopping" agent_gone
  wait "$agent_pid" 2>/dev/null || true
  agent_pid=""
}

dpkg-query -W -f='${db:Status-Abbrev}' exalate-zabbix 2>/dev/null | grep -q '^[ir]' &&
  fail "exalate-zabbix is already installed; package-test installs and purges it: remove it first"
port_open && fail "port $port is already in use: stop the running Zabbix agent first"
getent group zabbix >/dev/null || fail "no zabbix group: is zabbix-agent installed?"

# lint DEB OBJCOPY: lintian's tags on DEB, but for a "misspelling" lintian reads
# in a binary's machine code: letters such as "wTH" (cmp $0x2d; ja; bt) that
# come and go with the code's layout, so no override could match every build.
# A word also found outside the code sections (a string we ship) stays a tag.
lint() {
  local deb=$1 objcopy=$2 tree line word file
  local misspelt='^W: exalate-zabbix: spelling-error-in-binary ([^ ]+) [^ ]+ \[([^]]+)\]$'
  tree=$(mktemp -d)
  dpkg-deb -x "$deb" "$tree"
  lintian -E --pedantic --display-info "$deb" 2>&1 | grep -v 'running with root privileges' |
    while IFS= read -r line; do
      if [[ $line =~ $misspelt ]]; then
        word=${BASH_REMATCH[1]} file=$tree/${BASH_REMATCH[2]}
        "$objcopy" --remove-section=.text -O binary "$file" "$tree/not-code"
        if ! strings -a "$tree/not-code" | grep -qw -- "$word"; then
          echo "note: lintian read \"$word\" in the machine code of ${BASH_REMATCH[2]}, not in a string: not a tag" >&2
          continue
        fi
      fi
      printf '%s\n' "$line"
    done
  rm -rf "$tree"
}

echo "== the .deb: lintian"
lint=$(lint "$deb" "$(uname -m)-linux-gnu-objcopy")
expect "lintian: no tag left (overrides carry a reason each)" "$lint" ""

echo "== the .rpm: metadata"
rpm_list=$(rpm -qlp "$rpm" 2>/dev/null)
for path in /usr/lib64/zabbix/modules/libexalate_zabbix.so /usr/lib64/zabbix/modules/libexalate_zabbix.so.0 \
  /etc/zabbix/zabbix_agentd.conf.d/exalate_zabbix.conf /etc/zabbix/zabbix_agentd.d/exalate_zabbix.conf \
  /etc/zabbix/exalate_zabbix.toml /usr/include/exalate_zabbix.h /usr/lib64/pkgconfig/exalate_zabbix.pc \
  /usr/share/exalate-zabbix/template_exalate_zabbix.yaml /usr/share/exalate-zabbix/template_exalate_zabbix_7.0.yaml \
  /usr/share/exalate-zabbix/selinux/exalate_zabbix.te \
  /usr/share/exalate-zabbix/selinux/exalate_zabbix.fc /usr/share/exalate-zabbix/README.md \
  /usr/share/doc/exalate-zabbix/template/README.md "${doc_pages[@]/#//usr/share/doc/exalate-zabbix/}" \
  /usr/share/doc/exalate-zabbix/CHANGELOG.md /usr/share/licenses/exalate-zabbix/LICENSE \
  "$plugin" "$agent2_snippet" /usr/bin/exalate-zabbix /usr/share/man/man1/exalate-zabbix.1.gz; do
  grep -qx "$path" <<<"$rpm_list" || fail "rpm -qlp: $path missing"
done
ok "rpm -qlp: the contract's paths"
modes=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" 2>/dev/null)
expect "rpm: config is a noreplace conffile, 0640" "$(grep ' /etc/zabbix/exalate_zabbix.toml$' <<<"$modes" | cut -d' ' -f1-3)" "-rw-r----- root:root cn"
expect "rpm: snippets are noreplace config" "$(grep -c '^-rw-r--r-- root:root cn /etc/zabbix/zabbix_agentd.*/exalate_zabbix.conf$' <<<"$modes")" 2
expect "rpm: the module is 0755" "$(grep ' /usr/lib64/zabbix/modules/libexalate_zabbix.so$' <<<"$modes" | cut -d' ' -f1)" "-rwxr-xr-x"
expect "rpm: the agent 2 plugin is 0755" "$(grep " $plugin$" <<<"$modes" | cut -d' ' -f1-2)" "-rwxr-xr-x root:root"
expect "rpm: exalate-zabbix is 0755" "$(grep ' /usr/bin/exalate-zabbix$' <<<"$modes" | cut -d' ' -f1-2)" "-rwxr-xr-x root:root"
expect "rpm: its man page is documentation" "$(grep ' /usr/share/man/man1/exalate-zabbix.1.gz$' <<<"$modes" | cut -d' ' -f1-3)" "-rw-r--r-- root:root d"
expect "rpm: the agent 2 snippet is noreplace config" "$(grep " $agent2_snippet$" <<<"$modes" | cut -d' ' -f1-3)" "-rw-r--r-- root:root cn"
requires=$(rpm -qp --requires "$rpm" 2>/dev/null)
grep -q '^libc\.so\.6(GLIBC_2\.[0-9.]*)(64bit)$' <<<"$requires" && ok "rpm: Requires libc versions from the build" || fail "rpm requires: $requires"
grep -q "^zabbix" <<<"$requires" && fail "rpm requires zabbix: $requires"
expect "rpm: Recommends either agent, not Requires" "$(rpm -qp --recommends "$rpm" 2>/dev/null)" "(zabbix-agent or zabbix-agent2)"
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
expect_match "rpm -qp --scripts: only %post, setting the group when it exists" "$scripts" "postinstall scriptlet (using /bin/sh):*getent group zabbix*"

# The %post scriptlet itself, pointed at a scratch file: with and without a zabbix group.
rpm -qp --qf '%{POSTIN}' "$rpm" 2>/dev/null | sed "s|/etc/zabbix/exalate_zabbix.toml|$work/post.toml|g" > "$work/post.sh"
mkdir -p "$work/nogroup"
printf '#!/bin/sh\nexit 2\n' > "$work/nogroup/getent" && chmod +x "$work/nogroup/getent"
install -m 0640 /dev/null "$work/post.toml"
PATH="$work/nogroup:$PATH" sh -e "$work/post.sh" 1 || fail "%post fails without a zabbix group"
expect "rpm %post without a zabbix group: exits 0, leaves root:root 0640" "$(stat -c '%a %U:%G' "$work/post.toml")" "640 root:root"
sh -e "$work/post.sh" 1 || fail "%post fails with a zabbix group"
expect "rpm %post with a zabbix group: root:zabbix 0640" "$(stat -c '%a %U:%G' "$work/post.toml")" "640 root:zabbix"
rm -f "$work/post.toml"
sh -e "$work/post.sh" 1 || fail "%post fails when the config is absent"
ok "rpm %post with the config absent: exits 0"

echo "== the .rpm: payload (rpm2cpio | cpio)"
mkdir -p "$work/rpmroot"
(cd "$work/rpmroot" && rpm2cpio "$top/$rpm" | cpio -idm --quiet)
r=$work/rpmroot
expect "rpm payload: module mode" "$(stat -c '%a' "$r/usr/lib64/zabbix/modules/libexalate_zabbix.so")" 755
expect "rpm payload: .so.0 symlink" "$(readlink "$r/usr/lib64/zabbix/modules/libexalate_zabbix.so.0")" libexalate_zabbix.so
expect "rpm payload: config mode" "$(stat -c '%a' "$r/etc/zabbix/exalate_zabbix.toml")" 640
for d in zabbix_agentd.d zabbix_agentd.conf.d; do
  expect "rpm payload: $d snippet" "$(cat "$r/etc/zabbix/$d/exalate_zabbix.conf")" "LoadModule=/usr/lib64/zabbix/modules/libexalate_zabbix.so"
done
expect "rpm payload: agent 2 snippet" "$(cat "$r$agent2_snippet")" "Plugins.Exalate.System.Path=$plugin"
out=$(record "$(EXALATE_ZABBIX_CONFIG=/nonexistent "$r$plugin" 2>&1)" || true)
expect_match "rpm payload: the plugin runs (and says agent 2 starts it)" "$out" "zabbix-agent2-plugin-exalate $version: a Zabbix agent 2 plugin*"
expect "rpm payload: exalate-zabbix --version" "$("$r/usr/bin/exalate-zabbix" --version)" "exalate-zabbix $version"
expect "rpm payload: pkg-config libdir" "$(sed -n 's/^libdir=//p' "$r/usr/lib64/pkgconfig/exalate_zabbix.pc")" /usr/lib64/zabbix/modules
cmp -s "$r/usr/share/exalate-zabbix/template_exalate_zabbix.yaml" packaging/template/template_exalate_zabbix.yaml &&
  cmp -s "$r/usr/share/exalate-zabbix/template_exalate_zabbix_7.0.yaml" packaging/template/template_exalate_zabbix_7.0.yaml &&
  ok "rpm payload: the templates (6.0, 7.0)" || fail "rpm payload: a template differs"
if [ -f include/exalate_zabbix.h ]; then
  cmp -s "$r/usr/include/exalate_zabbix.h" include/exalate_zabbix.h && ok "rpm payload: the header" || fail "rpm payload: header differs"
else
  echo "note: include/exalate_zabbix.h is not in this tree: the packages carry a placeholder header"
fi

echo "== the arm64 .deb and aarch64 .rpm: as the amd64 ones, for aarch64"
lint=$(lint "$arm64_deb" aarch64-linux-gnu-objcopy)
expect "arm64 .deb: lintian, no tag left" "$lint" ""
# Every path with its mode and owner, the multiarch pkg-config dir named as on amd64.
deb_paths() { dpkg-deb -c "$1" | awk '{print $1, $2, $6, $7, $8}' | sed 's|/aarch64-linux-gnu/|/x86_64-linux-gnu/|'; }
expect "arm64 .deb: the amd64 .deb's paths, modes and owners" "$(deb_paths "$arm64_deb")" "$(deb_paths "$deb")"
expect "arm64 .deb: Architecture" "$(dpkg-deb -f "$arm64_deb" Architecture)" arm64
deb_fields() { dpkg-deb -f "$1" Package Version Maintainer Recommends Section Priority Description; }
expect "arm64 .deb: the amd64 .deb's other fields" "$(deb_fields "$arm64_deb")" "$(deb_fields "$deb")"
mkdir -p "$work/arm64-deb"
dpkg-deb -x "$arm64_deb" "$work/arm64-deb"
arm64_deb_module=$work/arm64-deb/usr/lib/zabbix/modules/libexalate_zabbix.so
arm64_glibc=$(scripts/max-glibc.sh "$arm64_deb_module" "$glibc_floor" | sed -n 's/.*needed: //p') ||
  fail "arm64 .deb's module needs a GLIBC above $glibc_floor"
ok "arm64 .deb: the module needs GLIBC $arm64_glibc, at most $glibc_floor"
arm64_depends=$(dpkg-deb -f "$arm64_deb" Depends)
expect_match "arm64 .deb: Depends on libc6 from the module's GLIBC" "$arm64_depends" "*libc6 (>= $arm64_glibc)*"
deb_depends_names() { dpkg-deb -f "$1" Depends | sed 's/ ([^)]*)//g'; }
expect "arm64 .deb: Depends on the amd64 .deb's packages" "$(deb_depends_names "$arm64_deb")" "$(deb_depends_names "$deb")"
elf_machine() { readelf -h "$1" | sed -n 's/^ *Machine: *//p'; }
expect "arm64 .deb: the module is AArch64 code" "$(elf_machine "$arm64_deb_module")" AArch64
expect "amd64 .deb: the module is x86-64 code" "$(elf_machine "$(dpkg-deb -x "$deb" "$work/amd64-deb" &&
  echo "$work/amd64-deb/usr/lib/zabbix/modules/libexalate_zabbix.so")")" "Advanced Micro Devices X86-64"

expect "aarch64 .rpm: Arch" "$(rpm -qp --qf '%{ARCH}' "$arm64_rpm" 2>/dev/null)" aarch64
rpm_files() { rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$1" 2>/dev/null; }
expect "aarch64 .rpm: the x86_64 .rpm's paths, modes, owners and flags" "$(rpm_files "$arm64_rpm")" "$(rpm_files "$rpm")"
rpm_meta() { rpm -qp --recommends --scripts "$1" 2>/dev/null; }
expect "aarch64 .rpm: the x86_64 .rpm's Recommends and scriptlets" "$(rpm_meta "$arm64_rpm")" "$(rpm_meta "$rpm")"
mkdir -p "$work/arm64-rpm"
(cd "$work/arm64-rpm" && rpm2cpio "$top/$arm64_rpm" | cpio -idm --quiet)
arm64_rpm_module=$work/arm64-rpm/usr/lib64/zabbix/modules/libexalate_zabbix.so
expect "aarch64 .rpm: the module is AArch64 code" "$(elf_machine "$arm64_rpm_module")" AArch64
scripts/max-glibc.sh "$arm64_rpm_module" "$glibc_floor" >/dev/null || fail "aarch64 .rpm's module needs a GLIBC above $glibc_floor"
ok "aarch64 .rpm: the module needs GLIBC $glibc_floor at most"
expect "aarch64 .rpm: Requires, libc up to the module's GLIBC" \
  "$(rpm -qp --requires "$arm64_rpm" 2>/dev/null | grep -v '^rpmlib(' | grep -c "(GLIBC_$arm64_glibc)(64bit)$")" 1
# The same libraries as on x86_64 but its dynamic loader, which only the x86_64
# module names (their symbol versions differ: aarch64's glibc starts at 2.17).
sonames() { rpm -qp --requires "$1" 2>/dev/null | grep -v -e '^rpmlib(' -e '^ld-linux' | sed 's/(.*//' | sort -u; }
expect "aarch64 .rpm: Requires the x86_64 .rpm's libraries" "$(sonames "$arm64_rpm")" "$(sonames "$rpm")"

echo "== the demo Exalate node (fake, on 127.0.0.1)"
# Files the agent (user zabbix) reads: root:zabbix 0640 in a directory it can traverse.
chgrp zabbix "$work" && chmod 0750 "$work"
printf '%s\n' "$secret" > "$work/demo.secret"
chgrp zabbix "$work/demo.secret" && chmod 0640 "$work/demo.secret"
# The customer monitor endpoint's own token (exalate.node.errors), a secret too.
printf 'cmonitor-%s\n' "$(head -c 16 /dev/urandom | base64 | tr -d '/+=')" > "$work/cmonitor.token"
chgrp zabbix "$work/cmonitor.token" && chmod 0640 "$work/cmonitor.token"
# The password of the node's platform user (Exalate's own API, logged in with).
printf 'api-%s\n' "$(head -c 16 /dev/urandom | base64 | tr -d '/+=')" > "$work/api.password"
chgrp zabbix "$work/api.password" && chmod 0640 "$work/api.password"
coproc NODE { exec "$node_bin" --demo --base-path /jira --secret-file "$work/demo.secret" \
  --cmonitor-token-file "$work/cmonitor.token" --cmonitor-errors 2 \
  --api-user zabbix-monitor --api-password-file "$work/api.password" --exit-on-stdin-eof 2>/dev/null; }
node_pid=$NODE_PID
read -r -t 30 -u "${NODE[0]}" line || fail "the fake node printed no URL"
url=${line#listening on }
expect_match "fake node listening" "$url" "http://*/jira"
cat > "$work/exalate_zabbix.toml" <<TOML
[defaults]
timeout = 3

[nodes.demo]
url = "$url"
relations = ["AllContent", "Service Desk", "Jira Cloud/EU"]
jwt_secret_file = "$work/demo.secret"
cmonitor_url = "$url/rest/issuehub/4.0/cmonitor"
cmonitor_token_file = "$work/cmonitor.token"
api_user = "zabbix-monitor"
api_password_file = "$work/api.password"
api_login = true
TOML
chgrp zabbix "$work/exalate_zabbix.toml" && chmod 0640 "$work/exalate_zabbix.toml"

echo "== the .rpm's module in the agent"
cat > "$work/rpm-agent.conf" <<CONF
LogType=console
AllowRoot=1
Timeout=5
LoadModule=$r/usr/lib64/zabbix/modules/libexalate_zabbix.so.0
CONF
out=$(record "$(EXALATE_ZABBIX_CONFIG=$work/exalate_zabbix.toml "$agentd" -c "$work/rpm-agent.conf" -t exalate.module.version 2>&1)")
expect_match "rpm module (through .so.0) loads: exalate.module.version" "$out" "exalate.module.version*\[s|$version\]"
out=$(record "$(EXALATE_ZABBIX_CONFIG=$work/exalate_zabbix.toml "$agentd" -c "$work/rpm-agent.conf" -t 'exalate.queue.count[demo,AllContent,syncrequests]' 2>&1)")
expect_match "rpm module answers against the node" "$out" "*\[u|3\]"

echo "== the arm64 modules in Debian's arm64 agent ($(cat "$arm64_root/.exalate-compat-ready" 2>/dev/null), qemu-user)"
# The agent names host paths: qemu-user's -L serves only what exists in the sysroot.
arm64_agent() { # MODULE KEY
  printf 'LogType=console\nAllowRoot=1\nTimeout=5\nLoadModule=%s\n' "$1" > "$work/arm64-agent.conf"
  EXALATE_ZABBIX_CONFIG=$work/exalate_zabbix.toml qemu-aarch64-static -L "$arm64_root" \
    "$arm64_root/usr/sbin/zabbix_agentd" -c "$work/arm64-agent.conf" -t "$2" 2>&1
}
for module in "$arm64_deb_module" "$arm64_rpm_module"; do
  from=.deb
  [ "$module" = "$arm64_rpm_module" ] && from=.rpm
  out=$(record "$(arm64_agent "$module" exalate.module.version)")
  expect_match "arm64 $from module loads in the arm64 agent" "$out" "exalate.module.version*\[s|$version\]"
  out=$(record "$(arm64_agent "$module" 'exalate.queue.count[demo,AllContent,syncrequests]')")
  expect_match "arm64 $from module answers against the node" "$out" "*\[u|3\]"
done

echo "== dpkg -i"
had_zabbix_agentd_d=no
[ -d /etc/zabbix/zabbix_agentd.d ] && had_zabbix_agentd_d=yes
record "$(dpkg -i "$deb" 2>&1)" > /dev/null || fail "dpkg -i: $(tail -n 5 "$all_output")"
expect "dpkg: installed" "$(dpkg-query -W -f='${db:Status-Abbrev}' exalate-zabbix)" "ii "
expect "module: root:root 0644" "$(stat -c '%a %U:%G' /usr/lib/zabbix/modules/libexalate_zabbix.so)" "644 root:root"
expect "module: .so.0 symlink" "$(readlink /usr/lib/zabbix/modules/libexalate_zabbix.so.0)" libexalate_zabbix.so
for d in zabbix_agentd.conf.d zabbix_agentd.d; do
  expect "agent snippet in $d" "$(cat "/etc/zabbix/$d/exalate_zabbix.conf")" "LoadModule=/usr/lib/zabbix/modules/libexalate_zabbix.so"
done
expect "agent 2 plugin: root:root 0755" "$(stat -c '%a %U:%G' "$plugin")" "755 root:root"
expect "agent 2 snippet in plugins.d" "$(cat "$agent2_snippet")" "Plugins.Exalate.System.Path=$plugin"
expect "config: root:zabbix 0640 (postinst)" "$(stat -c '%a %U:%G' /etc/zabbix/exalate_zabbix.toml)" "640 root:zabbix"
expect_match "config: the one conffile" "$(dpkg-query -W -f='${Conffiles}' exalate-zabbix)" " /etc/zabbix/exalate_zabbix.toml [0-9a-f]*"
expect "pkg-config: libdir is the module dir" "$(sed -n 's/^libdir=//p' "/usr/lib/$multiarch/pkgconfig/exalate_zabbix.pc")" /usr/lib/zabbix/modules
for f in /usr/include/exalate_zabbix.h /usr/share/exalate-zabbix/template_exalate_zabbix.yaml \
  /usr/share/exalate-zabbix/template_exalate_zabbix_7.0.yaml \
  /usr/share/doc/exalate-zabbix/copyright /usr/share/doc/exalate-zabbix/changelog.Debian.gz \
  /usr/share/doc/exalate-zabbix/changelog.gz /usr/share/exalate-zabbix/README.md; do
  [ -f "$f" ] || fail "missing $f"
done
# Each page gzip-compressed (Debian policy), the template's README beside the template too.
for page in "${doc_pages[@]}" template/README.md; do
  source_file=$page
  [ "$page" = template/README.md ] && source_file=packaging/template/README.md
  gzip -dc "/usr/share/doc/exalate-zabbix/$page.gz" 2>/dev/null | cmp -s - "$source_file" ||
    fail "/usr/share/doc/exalate-zabbix/$page.gz is not $source_file, compressed"
done
cmp -s /usr/share/exalate-zabbix/README.md packaging/template/README.md ||
  fail "/usr/share/exalate-zabbix/README.md is not packaging/template/README.md"
ok "header, template and its README, copyright, changelogs, README and docs installed"

echo "== exalate-zabbix check"
expect "exalate-zabbix: root:root 0755 in /usr/bin" "$(stat -c '%a %U:%G' /usr/bin/exalate-zabbix)" "755 root:root"
expect "exalate-zabbix --version" "$(exalate-zabbix --version)" "exalate-zabbix $version"
expect_match "exalate-zabbix --help" "$(exalate-zabbix --help)" "usage: exalate-zabbix check*"
man_warnings=$(MANWIDTH=80 man --warnings -l /usr/share/man/man1/exalate-zabbix.1.gz 2>&1 >/dev/null)
expect "man -l exalate-zabbix(1): no warnings" "$man_warnings" ""
expect_match "man exalate-zabbix: its NAME" "$(MANWIDTH=200 man -l /usr/share/man/man1/exalate-zabbix.1.gz 2>/dev/null | col -b)" \
  "*exalate-zabbix - check the whole exalate-zabbix configuration in one run*"
check_rc=0
out=$(exalate-zabbix check --config "$work/exalate_zabbix.toml" 2>&1) || check_rc=$?
record "$out" >/dev/null
expect "exalate-zabbix check: the demo node works (exit 0)" "$check_rc" 0
expect_match "exalate-zabbix check: each relation's counts" "$out" \
  "*  ok    relation 'Jira Cloud/EU'     syncrequests 1, blobrequests 0,*"
expect_match "exalate-zabbix check: the node's API, logged in (the file named, not the password)" "$out" \
  "*  ok    api credentials              a login (api_login), api_user 'zabbix-monitor', api_password_file $work/api.password, then X-Exalate-Jwt: logged in
*"
expect_match "exalate-zabbix check: the node's totals" "$out" "*  ok    node queues                  outgoing 1500, incoming 420
*"
expect_match "exalate-zabbix check: a deactivated connection is a warning" "$out" \
  "*  WARN  connection 'Jira Cloud/EU'   DEACTIVATED, remote https://eu-tenant.atlassian.net; in relations
*"
expect_match "exalate-zabbix check: a connection not in relations is not monitored" "$out" \
  "*  WARN  connection 'Legacy Sync'     ERROR, remote https://legacy.example.org; not monitored: add it to relations to watch its queues
*"
expect_match "exalate-zabbix check: the installed snippet loads the module" "$out" \
  "*  ok    agentd                       LoadModule=/usr/lib/zabbix/modules/libexalate_zabbix.so in /etc/zabbix/*"
expect_match "exalate-zabbix check: user zabbix reads the secret" "$out" "*  ok    read jwt_secret_file         $work/demo.secret readable by zabbix*"
out=$(exalate-zabbix check --config "$work/exalate_zabbix.toml" --json) || true
record "$out" >/dev/null
expect "exalate-zabbix check --json: one JSON document, exit_code 0" \
  "$(php -r '$r = json_decode(stream_get_contents(STDIN), true); echo $r["exit_code"] ?? "no JSON";' <<<"$out")" 0
check_rc=0
out=$(exalate-zabbix check --config /nonexistent.toml 2>&1) || check_rc=$?
record "$out" >/dev/null
expect "exalate-zabbix check: an unreadable config exits 2" "$check_rc" 2
# The C API side: a C program builds with the installed pkg-config file and runs
# (-L, -rpath and the .so.0 link); the header compiles when it is the real one.
cat > "$work/capi.c" <<'C'
#include <stdio.h>
int zbx_module_api_version(void);
int main(void) { printf("%d\n", zbx_module_api_version()); return 0; }
C
# shellcheck disable=SC2046
cc -o "$work/capi" "$work/capi.c" $(pkg-config --cflags --libs exalate_zabbix) || fail "cc with pkg-config exalate_zabbix"
expect "a C program links with pkg-config's flags and runs" "$("$work/capi")" 2
if ! grep -q placeholder /usr/include/exalate_zabbix.h; then
  # shellcheck disable=SC2046
  echo '#include <exalate_zabbix.h>' | cc -fsyntax-only -x c - $(pkg-config --cflags exalate_zabbix) ||
    fail "the installed header does not compile"
  ok "the installed header compiles"
fi
# The example config as installed: every item says what to do.
out=$(record "$("$agentd" -c "$stock_conf" -t exalate.discovery 2>&1)")
expect_match "stock agent with the example config: items ask for a node" "$out" "*ZBX_NOTSUPPORTED*/etc/zabbix/exalate_zabbix.toml*no \[nodes.NAME\] table*"

echo "== Debian's stock zabbix_agentd, stock config, module config -> demo node"
if [ ! -d /run/zabbix ]; then
  install -d -o zabbix -g zabbix /run/zabbix
  made_run_dir=yes
fi
start_agent "$work/exalate_zabbix.toml"
expect "agent runs as user zabbix" "$(ps -o user= -p "$agent_pid" | tr -d ' ')" zabbix
expect "exalate.module.version" "$(get exalate.module.version)" "$version"
expect "exalate.discovery" "$(get exalate.discovery)" \
  '[{"{#API}":"1","{#CMONITOR}":"1","{#NODE}":"demo","{#RELATION}":"AllContent"},{"{#API}":"1","{#CMONITOR}":"1","{#NODE}":"demo","{#RELATION}":"Service Desk"},{"{#API}":"1","{#CMONITOR}":"1","{#NODE}":"demo","{#RELATION}":"Jira Cloud/EU"}]'
expect "exalate.node.ping[demo]" "$(get 'exalate.node.ping[demo]')" 1
expect "exalate.node.errors[demo] (the customer monitor, Bearer)" "$(get 'exalate.node.errors[demo]')" 2
expect "exalate.node.queue[demo,outgoing] (Exalate's own API, a login)" "$(get 'exalate.node.queue[demo,outgoing]')" 1500
expect "exalate.node.queue[demo,incoming]" "$(get 'exalate.node.queue[demo,incoming]')" 420
expect_match "exalate.node.connections[demo]" "$(get 'exalate.node.connections[demo]')" \
  '\[{"name":"AllContent","status":"ACTIVE","remote":"https://partner.example.com/jira"},*{"name":"Jira Cloud/EU","status":"DEACTIVATED",*\]'
expect "exalate.queue.count[demo,AllContent,syncrequests]" "$(get 'exalate.queue.count[demo,AllContent,syncrequests]')" 3
expect "exalate.relation.stats[demo,AllContent]" "$(get 'exalate.relation.stats[demo,AllContent]')" \
  '{"syncrequests":3,"blobrequests":1,"syncresponses":2,"blobresponses":0,"errorresponses":2,"bloberrorresponses":1,"error_reasons":{"CHECKSUM_MISMATCH":1,"ISSUE_NOT_FOUND":1,"NO_ISSUE_TO_CONNECT_TO":1},"oldest_event_id":{"syncrequests":4,"blobrequests":55,"syncresponses":16,"blobresponses":0,"errorresponses":49,"bloberrorresponses":14}}'
out=$(get 'exalate.queue.get[demo,AllContent,errorresponses]')
[[ $out == '['*'"errorReason"'*']' && $out != *encodedPayload* ]] && ok "exalate.queue.get[...,errorresponses]: entries, no payload" || fail "queue.get: $out"
expect_match "a failure is one clear line" "$(get 'exalate.queue.count[demo,Removed,syncrequests]')" \
  "ZBX_NOTSUPPORTED: node 'demo', relation 'Removed'*relation not found on the node (HTTP 400*"

# Every key the installed template polls, as discovery fills it in for the demo node.
cat > "$work/polled-keys.php" <<'PHP'
<?php
require '/usr/share/php/Symfony/Component/Yaml/autoload.php';
$t = Symfony\Component\Yaml\Yaml::parseFile($argv[1])['zabbix_export']['templates'][0];
$all = $t['items'] ?? [];
foreach ($t['discovery_rules'] ?? [] as $rule) { $all[] = $rule; $all = array_merge($all, $rule['item_prototypes'] ?? []); }
foreach ($all as $item) {
	if (in_array($item['type'] ?? 'ZABBIX_PASSIVE', ['ZABBIX_PASSIVE', 'ZABBIX_ACTIVE'])) echo $item['key'], "\n";
}
PHP
polled=$(php "$work/polled-keys.php" /usr/share/exalate-zabbix/template_exalate_zabbix.yaml)
[ -n "$polled" ] || fail "no polled key in the installed template"
while IFS= read -r key; do
  for relation in AllContent '"Jira Cloud/EU"'; do
    k=${key//'{#NODE}'/demo}
    k=${k//'{#RELATION}'/$relation}
    k=${k//'{$EXALATE.CONNECTIONS.NODE}'/}   # its default: the only node
    v=$(get "$k")
    [[ $v != ZBX_NOTSUPPORTED* && -n $v ]] || fail "template key $k: $v"
  done
done <<<"$polled"
ok "every key the installed template polls answers ($(wc -l <<<"$polled") keys, 2 relations)"
# What agent 2 must answer word for word: good keys and failing ones.
compared_keys=(exalate.module.version exalate.discovery 'exalate.node.ping[demo]' 'exalate.node.ping'
  'exalate.node.errors[demo]' 'exalate.node.errors[demo,x]'
  'exalate.queue.count[demo,AllContent,syncrequests]' 'exalate.relation.stats[demo,"Jira Cloud/EU"]'
  'exalate.queue.get[demo,AllContent,errorresponses]' 'exalate.queue.count[demo,Removed,syncrequests]'
  'exalate.queue.count[staging,AllContent,syncrequests]' 'exalate.queue.count[demo,AllContent,errors]'
  'exalate.queue.count[demo,AllContent]' 'exalate.discovery[x]')
declare -A via_agentd
for key in "${compared_keys[@]}"; do via_agentd[$key]=$(get "$key"); done
stop_agent
ok "agent stopped"
[ "$log_size" = none ] && from=1 || from=$((log_size + 1))
tail -c +"$from" "$agent_log" >> "$all_output" 2>/dev/null || true
grep -q "exalate" "$all_output" || fail "nothing of the module in the outputs and agent log"

echo "== Debian's stock zabbix_agent2, stock config (the plugin's snippet), as user zabbix"
out=$(record "$(EXALATE_ZABBIX_CONFIG=$work/exalate_zabbix.toml "$agent2" -c "$stock_conf2" -t 'exalate.queue.count[demo,AllContent,syncrequests]' 2>&1)")
expect_match "zabbix_agent2 -t through the plugin" "$(tail -n 1 <<<"$out")" "exalate.queue.count*\[s|3\]"
start_agent2 "$work/exalate_zabbix.toml"
expect "agent 2 runs as user zabbix" "$(ps -o user= -p "$agent_pid" | tr -d ' ')" zabbix
for key in "${compared_keys[@]}"; do
  expect "agent 2 = agentd: $key" "$(get "$key")" "${via_agentd[$key]}"
done
while IFS= read -r key; do
  k=${key//'{#NODE}'/demo}
  k=${k//'{#RELATION}'/AllContent}
  k=${k//'{$EXALATE.CONNECTIONS.NODE}'/}
  v=$(get "$k")
  [[ $v != ZBX_NOTSUPPORTED* && -n $v ]] || fail "agent 2: template key $k: $v"
done <<<"$polled"
ok "agent 2: every key the installed template polls answers"
plugin_pids=$(pgrep -f "^$plugin " || true)
expect "agent 2: one plugin process, user zabbix" "$(ps -o user= -p "${plugin_pids:-0}" | tr -d ' ')" zabbix
stop_agent
ok "agent 2 stopped"
expect "agent 2: no plugin process left" "$(pgrep -f "^$plugin " || true)" ""
[ "$log2_size" = none ] && from=1 || from=$((log2_size + 1))
tail -c +"$from" "$agent2_log" >> "$all_output" 2>/dev/null || true

echo "== the installed template: Zabbix 6.0's own import validator"
(cd "$work" && { apt-get download -qq zabbix-frontend-php >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get download -qq zabbix-frontend-php >/dev/null; }; })
dpkg-deb -x "$work"/zabbix-frontend-php_*.deb "$work/frontend"
frontend_version=$(dpkg-deb -f "$work"/zabbix-frontend-php_*.deb Version)
expect "template valid for Zabbix $frontend_version's importer" \
  "$(php packaging/template/zabbix-validate.php "$work/frontend/usr/share/zabbix" /usr/share/exalate-zabbix/template_exalate_zabbix.yaml)" valid

echo "== the SELinux policy source (compiled only: no SELinux here to load or enforce it)"
cp -r /usr/share/exalate-zabbix/selinux "$work/selinux"
(cd "$work/selinux" && make -s -f /usr/share/selinux/devel/Makefile exalate_zabbix.pp >"$work/selinux.log" 2>&1) ||
  fail "the policy does not compile: $(tail -n 5 "$work/selinux.log")"
ok "exalate_zabbix.pp builds against the refpolicy headers"

echo "== dpkg -r"
record "$(dpkg -r exalate-zabbix 2>&1)" > /dev/null || fail "dpkg -r"
expect "dpkg: removed, config-files left" "$(dpkg-query -W -f='${db:Status-Abbrev}' exalate-zabbix)" "rc "
[ ! -e /usr/lib/zabbix/modules/libexalate_zabbix.so ] && [ ! -L /usr/lib/zabbix/modules/libexalate_zabbix.so.0 ] &&
  ok "module gone" || fail "module left after dpkg -r"
[ ! -e /etc/zabbix/zabbix_agentd.conf.d/exalate_zabbix.conf ] && [ ! -e /etc/zabbix/zabbix_agentd.d/exalate_zabbix.conf ] &&
  ok "agent snippets gone with the module" || fail "agent snippet left after dpkg -r"
[ ! -e "$plugin" ] && [ ! -e "$agent2_snippet" ] &&
  ok "agent 2 plugin and its snippet gone" || fail "agent 2 plugin or snippet left after dpkg -r"
expect "the conffile stays until purge (policy)" "$(stat -c '%a %U:%G' /etc/zabbix/exalate_zabbix.toml)" "640 root:zabbix"
start_agent
expect_match "the stock agent still starts; the module's keys are gone" "$(get exalate.module.version)" "ZBX_NOTSUPPORTED*"
stop_agent
start_agent2
expect_match "the stock agent 2 still starts; the plugin's keys are gone" "$(get exalate.module.version)" "ZBX_NOTSUPPORTED*"
stop_agent

echo "== dpkg -P"
record "$(dpkg -P exalate-zabbix 2>&1)" > /dev/null || fail "dpkg -P"
dpkg-query -W -f='${db:Status-Abbrev}' exalate-zabbix 2>/dev/null | grep -q '^[ir]' && fail "still known to dpkg after purge"
ok "dpkg: purged"
left=""
while read -r path; do
  path=/${path#./}
  { [ -e "$path" ] || [ -L "$path" ]; } && left="$left $path"
done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$')
for path in /etc/zabbix/zabbix_agentd.conf.d/exalate_zabbix.conf /etc/zabbix/zabbix_agentd.d/exalate_zabbix.conf \
  /usr/lib/zabbix/modules /usr/share/exalate-zabbix /usr/share/doc/exalate-zabbix "$agent2_snippet" "${plugin%/*}"; do
  [ -e "$path" ] && left="$left $path"
done
[ "$had_zabbix_agentd_d" = yes ] || { [ -e /etc/zabbix/zabbix_agentd.d ] && left="$left /etc/zabbix/zabbix_agentd.d"; }
expect "nothing of the package remains" "$left" ""
[ -f "$stock_conf" ] && ok "the agent's own config untouched" || fail "$stock_conf gone"

if grep -qF "$secret" "$all_output"; then fail "the secret appears in an output or the agent log"; fi
if grep -qF "$(cat "$work/cmonitor.token")" "$all_output"; then fail "the customer monitor token appears in an output or the agent log"; fi
if grep -qF "$(cat "$work/api.password")" "$all_output"; then fail "the API password appears in an output or the agent log"; fi
if grep -qE 'eyJ[A-Za-z0-9_-]{8,}' "$all_output"; then fail "a JWT (the login's?) appears in an output or the agent log"; fi
ok "the secret appears in no output, value or agent log"

echo "package-test took $(( $(date +%s) - started )) s"
echo "package-test: $passed passed, 0 failed"
