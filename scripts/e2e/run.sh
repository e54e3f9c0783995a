#!/usr/bin/env bash
# make e2e: the template in a live Zabbix 6.0 or 7.0. A private PostgreSQL,
# zabbix_server, an active zabbix_proxy (sqlite3), the frontend under PHP's
# built-in server, the fake Exalate node and the agents, all on random
# loopback ports with their files in target/e2e/run/; scripts/e2e/drive.php
# drives and checks everything through the JSON-RPC API, one phase at a
# time, while this script changes the fake node between phases.
# usage: scripts/e2e/run.sh MODULE_SO FAKE_NODE [AGENT2_PLUGIN]
#        E2E_ZABBIX=7.0: Debian trixie's 7.0 stack (scripts/e2e/install70.sh),
#        every daemon and agent run with chroot in its root, inside a private
#        mount namespace (unshare --mount) that holds the bind mounts of
#        /proc, /dev and this checkout: nothing stays mounted on the host,
#        even when killed. Default 6.0: bookworm's, unpacked (install.sh).
#        E2E_SCREENSHOT=FILE also screenshots a dashboard (needs chromium).
# Hosts: "Exalate agentd" (zabbix_agentd with the module, polled by the
# server), "Exalate via proxy" (the same, polled by the proxy), "Exalate
# active" (zabbix_agentd in active mode, template "... agent active") and,
# when AGENT2_PLUGIN is given, "Exalate agent2" (zabbix_agent2 + plugin).
# Each version imports its own file (7.0: the 6.0 file first, the 7.0 file
# over it); 7.0 adds a node answering in 4 s, whose relations prove the item
# timeout reaches the module, the active agent's availability (from
# Zabbix's "Zabbix agent active", linked beside ours on the active host) and the
# dashboard's honeycombs.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
module_so=$(realpath "${1:?usage: $0 MODULE_SO FAKE_NODE [AGENT2_PLUGIN]}")
fake_node=$(realpath "${2:?usage: $0 MODULE_SO FAKE_NODE [AGENT2_PLUGIN]}")
agent2_plugin=${3:+$(realpath "$3")}
zabbix=${E2E_ZABBIX:-6.0}
e2e=$top/target/e2e
case $zabbix in
  6.0) root=$e2e/root run=$e2e/run pg_data=$e2e/pg ;;
  7.0) root=$e2e/root-7.0 run=$e2e/run-7.0 pg_data=$e2e/pg-7.0 ;;
  *) echo "E2E_ZABBIX=$zabbix: 6.0 or 7.0" >&2; exit 2 ;;
esac
frontend=$root/usr/share/zabbix
started=$(date +%s)
# 7.0: everything below runs in a private mount namespace; the root sees the
# host's /proc and /dev, and this checkout at the same path (the module, the
# plugin, the run directory).
if [ "$zabbix" = 7.0 ] && [ -z "${E2E_NAMESPACE:-}" ]; then
  exec env E2E_NAMESPACE=1 unshare --mount --propagation private "$0" "$@"
fi
if [ "$zabbix" = 7.0 ]; then
  mount --rbind /proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mkdir -p "$root$top"
  mount --bind "$top" "$root$top"
fi

log() { printf '[e2e %s %3ss] %s\n' "$zabbix" "$(($(date +%s) - started))" "$*"; }

# ---- processes: each in its own process group, all stopped on exit ---------
groups=()
# stop_group PGID: TERM to the leader, which stops its own children (agent 2
# its plugins: killed alongside, they would fail its last requests); then to
# the whole group (PHP's workers survive their parent, lesson 7); KILL what
# is left after 10 s.
stop_group() {
  local i
  kill -TERM "$1" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    [ "$i" -ne 50 ] || kill -TERM -- "-$1" 2>/dev/null || true
    [ -d "/proc/$1" ] || kill -TERM -- "-$1" 2>/dev/null || true
    sleep 0.1
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}
# Newest first: the agents and the server stop before the database they use.
stop_all() {
  local status=$? i
  for ((i = ${#groups[@]} - 1; i >= 0; i--)); do stop_group "${groups[i]}"; done
  if [ "$status" -ne 0 ]; then
    echo "e2e failed; logs in $run:" >&2
    for f in "$run"/*.log; do
      [ -s "$f" ] || continue
      echo "--- tail of $f" >&2
      tail -n 15 "$f" >&2
    done
  fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in a new session (its own process
# group) with output to $run/NAME.out; remembers the group.
start() {
  local name=$1
  shift
  setsid "$@" >"$run/$name.out" 2>&1 </dev/null &
  groups+=("$!")
  eval "pid_$name=$!"
}
stop() {
  local var="pid_$1" g kept=()
  stop_group "${!var}"
  for g in "${groups[@]}"; do [ "$g" = "${!var}" ] || kept+=("$g"); done
  groups=("${kept[@]}")
}

# A port in 20000-32000 nobody listens on (other developers share this machine).
used_ports=" "
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    [[ $used_ports == *" $port "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    used_ports+="$port "
    echo "$port"
    return
  done
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out after ${seconds}s waiting for $what" >&2; return 1; }
    sleep 0.2
  done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rm -rf "$run"
mkdir -p "$run"
# The daemons that drop root (postgres) pass through these directories, and
# through every one above them: a checkout made by mktemp -d is 0700.
chmod 0755 "$e2e" "$run"
dir=$(dirname "$(realpath "$e2e")")
while [ "$dir" != / ]; do
  [ -n "$(find "$dir" -maxdepth 0 -perm -o+x)" ] || chmod o+x "$dir"
  dir=$(dirname "$dir")
done

pg_port=$(free_port) server_port=$(free_port) proxy_port=$(free_port) web_port=$(free_port)
agentd_port=$(free_port) proxied_port=$(free_port) agent2_port=$(free_port)

# ---- the frontend's locale (lesson 2) -----------------------------------------
locale_dir=$e2e/locale
if [ "$zabbix" = 6.0 ] && [ ! -f "$locale_dir/en_US.UTF-8/LC_CTYPE" ]; then
  mkdir -p "$locale_dir"
  localedef -i en_US -f UTF-8 "$locale_dir/en_US.UTF-8" 2>/dev/null || [ -f "$locale_dir/en_US.UTF-8/LC_CTYPE" ]
fi

# ---- PostgreSQL (as user postgres, lesson 4) ----------------------------------
# One cluster kept in target/e2e/pg with the loaded schema as a template
# database: each run starts from a fresh copy of it ("create database ...
# template"), and only the first run (or a new Zabbix) pays for the load.
pg_bin=$(dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
if [ "$zabbix" = 7.0 ]; then
  pg_bin=$(dirname "$(printf '%s\n' "$root"/usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
  pg_bin=${pg_bin#"$root"}
fi
schema=$root/usr/share/zabbix-server-pgsql
schema_id="$pg_bin $(cat "$root/.versions")"
if [ "$(cat "$e2e/pg.schema" 2>/dev/null)" != "$schema_id" ]; then
  rm -rf "$pg_data" "$e2e/pg.schema"
fi
pg_client=()
[ "$zabbix" = 6.0 ] || pg_client=(chroot "$root")
if [ "$zabbix" = 7.0 ]; then
  # The root's postgres user, by number (the host may have none, or another).
  pg_ids=$(awk -F: '$1 == "postgres" {print $3 ":" $4}' "$root/etc/passwd")
  as_postgres=(chroot --userspec="$pg_ids" "$root")
  pg_owner=$pg_ids
else
  as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)
  pg_owner=postgres:
fi
if [ ! -f "$pg_data/PG_VERSION" ]; then
  rm -rf "$pg_data"
  mkdir -p "$pg_data"
  chown "$pg_owner" "$pg_data"
  "${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C >"$run/initdb.log" 2>&1
fi
start postgres "${as_postgres[@]}" "$pg_bin/postgres" -D "$pg_data" \
  -c listen_addresses=127.0.0.1 -c port="$pg_port" -c unix_socket_directories="$pg_data" \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60
psql_zabbix() { PGOPTIONS='-c client_min_messages=warning' "${pg_client[@]}" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }
wait_for "PostgreSQL on $pg_port" 30 psql_zabbix -c 'select 1' postgres
if [ ! -f "$e2e/pg.schema" ]; then
  psql_zabbix -c 'drop database if exists zabbix_schema' -c 'create database zabbix_schema' postgres
  zcat "$schema/schema.sql.gz" "$schema/images.sql.gz" "$schema/data.sql.gz" |
    psql_zabbix zabbix_schema >"$run/schema.log"
  echo "$schema_id" >"$e2e/pg.schema"
  log "PostgreSQL: Zabbix schema loaded"
fi
psql_zabbix -c 'drop database if exists zabbix' -c 'create database zabbix template zabbix_schema' postgres
log "PostgreSQL on $pg_port: database zabbix created"

# ---- zabbix_server and zabbix_proxy (lesson 3: ListenPort, SocketDir) ---------
cat >"$run/zabbix_server.conf" <<EOF
ListenIP=127.0.0.1
ListenPort=$server_port
LogType=file
LogFile=$run/zabbix_server.log
PidFile=$run/zabbix_server.pid
SocketDir=$run
DBHost=127.0.0.1
DBPort=$pg_port
DBName=zabbix
DBUser=postgres
AllowRoot=1
Timeout=5
CacheUpdateFrequency=2
StartPollers=2
StartPollersUnreachable=1
StartTrappers=3
StartPingers=1
StartDiscoverers=1
StartHTTPPollers=1
StartAlerters=1
StartEscalators=1
StartLLDProcessors=2
StartPreprocessors=2
StartDBSyncers=2
StartHistoryPollers=1
HousekeepingFrequency=0
EOF
if [ "$zabbix" = 7.0 ]; then
  start server chroot "$root" /usr/sbin/zabbix_server -f -c "$run/zabbix_server.conf"
else
  start server "$root/usr/sbin/zabbix_server" -f -c "$run/zabbix_server.conf"
fi

cat >"$run/zabbix_proxy.conf" <<EOF
ProxyMode=0
Server=127.0.0.1:$server_port
Hostname=e2e-proxy
ListenIP=127.0.0.1
ListenPort=$proxy_port
LogType=file
LogFile=$run/zabbix_proxy.log
PidFile=$run/zabbix_proxy.pid
SocketDir=$run/proxy
DBName=$run/zabbix_proxy.db
AllowRoot=1
Timeout=5
$([ "$zabbix" = 7.0 ] && echo ProxyConfigFrequency=2 || echo ConfigFrequency=2)
DataSenderFrequency=1
StartPollers=2
StartPollersUnreachable=1
StartTrappers=1
StartPingers=1
StartDiscoverers=1
StartHTTPPollers=1
StartPreprocessors=1
StartDBSyncers=1
HousekeepingFrequency=0
EOF
mkdir -p "$run/proxy"

# ---- the frontend (PHP's built-in server, lessons 1 and 7) ----------------------
# 6.0: install.sh made the frontend read its conf/; 7.0 reads /etc/zabbix of its root.
frontend_conf=$frontend/conf/zabbix.conf.php
[ "$zabbix" = 6.0 ] || frontend_conf=$root/etc/zabbix/zabbix.conf.php
cat >"$frontend_conf" <<EOF
<?php
// Written by scripts/e2e/run.sh for this run.
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = '127.0.0.1';
\$DB['PORT'] = '$pg_port';
\$DB['DATABASE'] = 'zabbix';
\$DB['USER'] = 'postgres';
\$DB['PASSWORD'] = '';
\$DB['SCHEMA'] = '';
\$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = '';
\$DB['CERT_FILE'] = '';
\$DB['CA_FILE'] = '';
\$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1';
\$ZBX_SERVER_PORT = '$server_port';
\$ZBX_SERVER_NAME = 'exalate-zabbix e2e';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
EOF
if [ "$zabbix" = 7.0 ]; then
  php_frontend=(chroot "$root" env LANG=C.UTF-8 PHP_CLI_SERVER_WORKERS=4 php -S "127.0.0.1:$web_port" -t /usr/share/zabbix)
else
  php_frontend=(env LOCPATH="$locale_dir" PHP_CLI_SERVER_WORKERS=4 php -S "127.0.0.1:$web_port" -t "$frontend")
fi
start frontend "${php_frontend[@]}" \
  -d memory_limit=512M -d post_max_size=16M -d upload_max_filesize=2M -d max_execution_time=300 \
  -d max_input_time=300 -d date.timezone=UTC -d opcache.enable_cli=1 -d session.save_path="$run"
wait_for "the frontend on $web_port" 30 listening "$web_port"
wait_for "zabbix_server on $server_port" 60 listening "$server_port"
log "zabbix_server on $server_port, frontend on http://127.0.0.1:$web_port/"

# ---- the fake Exalate node and the module's configuration ---------------------
# Relation names with spaces, non-ASCII and '/'. Counts: syncrequests,
# blobrequests, syncresponses, blobresponses, errorresponses, bloberrorresponses.
secret_file=$run/demo.secret
head -c 24 /dev/urandom | base64 >"$secret_file"
chmod 0600 "$secret_file"
node_args=(--base-path /jira --secret-file "$secret_file")
# Exalate's own monitoring API (issuehub 4.0) of node demo, to a Jira user:
# the node totals and the connections, one of them paused while busy (and a
# name with a space, a quote, '/' and non-ASCII); all ACTIVE and nothing
# queued once calm. Node "onprem" is the same node watched with that user
# alone (no relations).
api_password_file=$run/api.password
printf 'e2e-Pa55 %s\n' "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$api_password_file"
chmod 0600 "$api_password_file"
api_args=(--api-user e2e-monitor --api-password-file "$api_password_file")
busy_api=(--api-outgoing 1500 --api-incoming 420
  --connection "AllContent=ACTIVE,https://partner.example.com/jira"
  --connection "Jira Cloud/EU=DEACTIVATED,https://eu-tenant.example.net"
  --connection "Zürich O'Brien / Süd=PENDING")
calm_api=(--api-outgoing 0 --api-incoming 0
  --connection "AllContent=ACTIVE,https://partner.example.com/jira"
  --connection "Jira Cloud/EU=ACTIVE,https://eu-tenant.example.net"
  --connection "Zürich O'Brien / Süd=ACTIVE")
# Stuck: five sync requests whose oldest stays while the newer ones move on
# every 10 s; Drains: five that all move on (a queue that drains at the same
# length). Calm: both drain, so the stuck event leaves.
busy_relations=(--relation "AllContent=3,1,2,0,2,1" --relation "Service Desk=40,0,1,0,0,0"
  --relation "Jira Cloud/EU=1,0,0,1,1,0" --relation "Bücher & Söhne=0,2,0,0,0,0"
  --relation "Stuck=5,0,0,0,0,0" --motion "Stuck=stuck:10000"
  --relation "Drains=5,0,0,0,0,0" --motion "Drains=draining:10000"
  --cmonitor-errors 3 "${busy_api[@]}")
calm_relations=(--relation "AllContent=0,0,0,0,0,0" --relation "Service Desk=0,0,0,0,0,0"
  --relation "Jira Cloud/EU=0,0,0,0,0,0" --relation "Bücher & Söhne=0,0,0,0,0,0"
  --relation "Stuck=5,0,0,0,0,0" --motion "Stuck=draining:10000"
  --relation "Drains=5,0,0,0,0,0" --motion "Drains=draining:10000"
  --cmonitor-errors 0 "${calm_api[@]}")
# The customer monitor endpoint of node demo, with its own bearer token.
cmonitor_token_file=$run/cmonitor.token
printf 'cmonitor-%s\n' "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$cmonitor_token_file"
chmod 0600 "$cmonitor_token_file"
node_port=$(free_port)
start_node() {
  start node "$fake_node" --listen "127.0.0.1:$node_port" "${node_args[@]}" \
    --cmonitor-token-file "$cmonitor_token_file" "${api_args[@]}" "$@"
  wait_for "the fake node on $node_port" 30 listening "$node_port"
}
start_node "${busy_relations[@]}"
# 7.0: a node answering in 4 s (Patient's queue drains: no stuck event),
# its relations bounded by their item timeouts
# ({$EXALATE.TIMEOUT}: 10 s for Patient, the host's 3 s for Hasty), the
# config's timeout well above both; discovered on host "Exalate agentd" only.
slow_port=$(free_port)
slow_node=""
if [ "$zabbix" = 7.0 ]; then
  start slow "$fake_node" --listen "127.0.0.1:$slow_port" "${node_args[@]}" --delay-ms 4000 \
    --relation "Patient=5,0,0,0,0,0" --motion "Patient=draining:10000" --relation "Hasty=7,0,0,0,0,0"
  wait_for "the slow fake node on $slow_port" 30 listening "$slow_port"
  slow_node="
[nodes.slow]
url = \"http://127.0.0.1:$slow_port/jira\"
relations = [\"Patient\", \"Hasty\"]
jwt_secret_file = \"$secret_file\"
timeout = 20"
fi
closed_port=$(free_port)
# "Gone" is configured but the node has no such relation; node "down" listens nowhere:
# the deliberately failing items.
cat >"$run/exalate_zabbix.toml" <<EOF
[defaults]
timeout = 3
cache_ttl = 1

[nodes.demo]
url = "http://127.0.0.1:$node_port/jira"
relations = ["AllContent", "Service Desk", "Jira Cloud/EU", "Bücher & Söhne", "Gone", "Stuck", "Drains"]
jwt_secret_file = "$secret_file"
cmonitor_url = "http://127.0.0.1:$node_port/jira/rest/issuehub/4.0/cmonitor"
cmonitor_token_file = "$cmonitor_token_file"
api_user = "e2e-monitor"
api_password_file = "$api_password_file"

[nodes.onprem]
url = "http://127.0.0.1:$node_port/jira"
api_user = "e2e-monitor"
api_password_file = "$api_password_file"

[nodes.down]
url = "http://127.0.0.1:$closed_port"
relations = ["AllContent"]
jwt_secret_file = "$secret_file"
$slow_node
EOF
chmod 0640 "$run/exalate_zabbix.toml"
export EXALATE_ZABBIX_CONFIG=$run/exalate_zabbix.toml

# agentd_conf NAME PORT EXTRA...: a zabbix_agentd config loading the module.
agentd_conf() {
  local name=$1 port=$2
  shift 2
  {
    echo "LogType=file"
    echo "LogFile=$run/$name.log"
    echo "PidFile=$run/$name.pid"
    echo "ListenIP=127.0.0.1"
    echo "ListenPort=$port"
    echo "AllowRoot=1"
    echo "Timeout=5"
    echo "LoadModulePath=$(dirname "$module_so")"
    echo "LoadModule=$(basename "$module_so")"
    printf '%s\n' "$@"
  } >"$run/$name.conf"
}
# The slow node's items hold an agent process 4 s each: more of them on 7.0.
agentd_conf agentd "$agentd_port" "Server=127.0.0.1" "ServerActive=" "StartAgents=$([ "$zabbix" = 7.0 ] && echo 6 || echo 2)" "Hostname=Exalate agentd"
agentd_conf proxied "$proxied_port" "Server=127.0.0.1" "ServerActive=" "StartAgents=2" "Hostname=Exalate via proxy"
# Active mode only: no listener; asks the server for its checks.
agentd_conf active "$(free_port)" "StartAgents=0" "ServerActive=127.0.0.1:$server_port" \
  "Hostname=Exalate active" "RefreshActiveChecks=60" "BufferSend=1"
# 6.0: this machine's agents; 7.0: the root's.
agent_root=()
[ "$zabbix" = 6.0 ] || agent_root=(chroot "$root")
start agentd "${agent_root[@]}" /usr/sbin/zabbix_agentd -f -c "$run/agentd.conf"
start proxied "${agent_root[@]}" /usr/sbin/zabbix_agentd -f -c "$run/proxied.conf"

if [ -n "$agent2_plugin" ]; then
  cat >"$run/agent2.conf" <<EOF
LogType=file
LogFile=$run/agent2.log
PidFile=$run/agent2.pid
ControlSocket=$run/agent2.sock
PluginSocket=$run/agent2.plugin.sock
ListenIP=127.0.0.1
ListenPort=$agent2_port
Server=127.0.0.1
ServerActive=
Hostname=Exalate agent2
Timeout=5
Plugins.Exalate.System.Path=$agent2_plugin
Plugins.Exalate.Config=$run/exalate_zabbix.toml
EOF
  start agent2 "${agent_root[@]}" /usr/sbin/zabbix_agent2 -c "$run/agent2.conf"
fi
wait_for "zabbix_agentd on $agentd_port" 30 listening "$agentd_port"
wait_for "zabbix_agentd on $proxied_port" 30 listening "$proxied_port"
[ -z "$agent2_plugin" ] || wait_for "zabbix_agent2 on $agent2_port" 30 listening "$agent2_port"

# ---- the checks -----------------------------------------------------------------
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
cat >"$run/drive.json" <<EOF
{
  "api": "http://127.0.0.1:$web_port/",
  "zabbix": "$zabbix",
  "template": "$top/packaging/template/$([ "$zabbix" = 7.0 ] && echo template_exalate_zabbix_7.0.yaml || echo template_exalate_zabbix.yaml)",
  "template_60": "$top/packaging/template/template_exalate_zabbix.yaml",
  "state": "$run/state.json",
  "module_version": "$version",
  "server_port": "$server_port",
  "agentd_port": "$agentd_port",
  "proxied_port": "$proxied_port",
  "agent2_port": "$([ -n "$agent2_plugin" ] && echo "$agent2_port")",
  "chart": "$run/chart.png",
  "run": "$run",
  "secret_file": "$secret_file",
  "cmonitor_token_file": "$cmonitor_token_file",
  "api_password_file": "$api_password_file"
}
EOF
# 7.0: the root's PHP 8.4 runs the checks too (this machine needs no PHP).
drive() { "${agent_root[@]}" php -d date.timezone=UTC "$top/scripts/e2e/drive.php" "$run/drive.json" "$@"; }

drive setup
# The proxy and the active agent start once the server knows them: their first
# configuration request then carries every check.
if [ "$zabbix" = 7.0 ]; then
  start proxy chroot "$root" /usr/sbin/zabbix_proxy -f -c "$run/zabbix_proxy.conf"
else
  start proxy "$root/usr/sbin/zabbix_proxy" -f -c "$run/zabbix_proxy.conf"
fi
drive active-ready
start active "${agent_root[@]}" /usr/sbin/zabbix_agentd -f -c "$run/active.conf"
drive busy
# The README's picture (not in CI): E2E_SCREENSHOT=docs/dashboard.png with
# Debian's chromium installed; the dashboard of host "Exalate agentd".
if [ -n "${E2E_SCREENSHOT:-}" ]; then
  url=$(drive guest-url)
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1180 \
    --virtual-time-budget=15000 --screenshot="$E2E_SCREENSHOT" "$url" >"$run/chromium.log" 2>&1
  log "dashboard screenshot: $E2E_SCREENSHOT"
fi
log "node changed: errors cleared, queues drained, the stuck event leaves, every connection ACTIVE"
stop node
start_node "${calm_relations[@]}"
drive calm
log "node stopped"
stop node
drive stopped
log "passed in $(($(date +%s) - started))s"
