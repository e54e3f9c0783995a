#!/usr/bin/env bash
# The demo: the real zabbix_agentd loads the release module and answers every
# item against the built-in demo Exalate node (the test fixture with sample
# data), queried over the agent's TCP protocol; then the real zabbix_agent2
# runs the release agent 2 plugin and answers the same keys, each compared
# with zabbix_agentd's answer. Leaves nothing running.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
module=$top/target/release/libexalate_zabbix.so
plugin=$top/target/release/zabbix-agent2-plugin-exalate
node_bin=$top/target/release/fake-exalate-node
work=$(mktemp -d /tmp/exalate-zabbix-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Credentials the module mints HS256 tokens from, and the password of the
# node's platform user (Exalate's own API, logged in with); never printed.
head -c 32 /dev/urandom | base64 > "$work/demo.secret"
head -c 24 /dev/urandom | base64 > "$work/demo.api"
chmod 0600 "$work/demo.secret" "$work/demo.api"

# The demo node, on a free port; its first line is its URL.
coproc NODE { exec "$node_bin" --demo --base-path /jira --secret-file "$work/demo.secret" \
  --api-user zabbix-monitor --api-password-file "$work/demo.api" --exit-on-stdin-eof; }
pids+=("$NODE_PID")
read -r -u "${NODE[0]}" line
url=${line#listening on }
echo "demo Exalate node: $url"

cat > "$work/exalate_zabbix.toml" <<TOML
[defaults]
timeout = 3
cache_ttl = 10

[nodes.demo]
url = "$url"
relations = ["AllContent", "Service Desk", "Jira Cloud/EU"]
jwt_secret_file = "$work/demo.secret"
api_user = "zabbix-monitor"
api_password_file = "$work/demo.api"
api_login = true
TOML

port=$((20000 + RANDOM % 12000))
cat > "$work/zabbix_agentd.conf" <<CONF
LogType=file
LogFile=$work/zabbix_agentd.log
PidFile=$work/zabbix_agentd.pid
ListenIP=127.0.0.1
ListenPort=$port
Server=127.0.0.1
ServerActive=
StartAgents=3
Timeout=3
AllowRoot=1
LoadModule=$module
CONF
EXALATE_ZABBIX_CONFIG=$work/exalate_zabbix.toml /usr/sbin/zabbix_agentd -f -c "$work/zabbix_agentd.conf" >/dev/null &
pids+=("$!")
for _ in $(seq 100); do
  [ "$("$top/scripts/zbx_get.sh" "$port" agent.ping 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
echo "zabbix_agentd $(/usr/sbin/zabbix_agentd -V | head -1 | awk '{print $NF}') on 127.0.0.1:$port with LoadModule=$module"
echo

keys=(exalate.module.version exalate.discovery 'exalate.node.ping[demo]'
  'exalate.node.queue[demo,outgoing]' 'exalate.node.queue[demo,incoming]' 'exalate.node.connections[demo]')
for relation in AllContent "Service Desk" "Jira Cloud/EU"; do
  for queue in syncrequests blobrequests syncresponses blobresponses errorresponses bloberrorresponses; do
    keys+=("exalate.queue.count[demo,\"$relation\",$queue]")
  done
  keys+=("exalate.relation.stats[demo,\"$relation\"]")
done
keys+=('exalate.queue.get[demo,AllContent,errorresponses]')
failing=('exalate.queue.count[demo,Removed,syncrequests]' 'exalate.queue.count[demo,AllContent,errors]'
  'exalate.queue.count[staging,AllContent,syncrequests]' 'exalate.node.queue[demo,sideways]')
declare -A via_agentd
get() { via_agentd[$1]=$("$top/scripts/zbx_get.sh" "$port" "$1"); printf '%-62s %s\n' "$1" "${via_agentd[$1]}"; }
for key in "${keys[@]}"; do get "$key"; done
echo
echo "and failures, as Zabbix shows them:"
for key in "${failing[@]}"; do get "$key"; done

# The same keys through Zabbix agent 2 and the plugin.
port2=$((20000 + RANDOM % 12000))
[ "$port2" != "$port" ] || port2=$((port + 1))
cat > "$work/zabbix_agent2.conf" <<CONF
LogType=file
LogFile=$work/zabbix_agent2.log
PidFile=$work/zabbix_agent2.pid
ListenIP=127.0.0.1
ListenPort=$port2
Server=127.0.0.1
ServerActive=
Hostname=exalate-demo
ControlSocket=$work/agent2.sock
PluginSocket=$work/agent2.plugin.sock
Timeout=3
Plugins.Exalate.System.Path=$plugin
Plugins.Exalate.Config=$work/exalate_zabbix.toml
CONF
/usr/sbin/zabbix_agent2 -c "$work/zabbix_agent2.conf" >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 100); do
  [ "$("$top/scripts/zbx_get.sh" "$port2" agent.ping 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
echo
echo "zabbix_agent2 $(/usr/sbin/zabbix_agent2 -V | head -1 | awk '{print $NF}') on 127.0.0.1:$port2 with Plugins.Exalate.System.Path=$plugin"
same=0 differ=0
for key in "${keys[@]}" "${failing[@]}"; do
  value=$("$top/scripts/zbx_get.sh" "$port2" "$key")
  if [ "$value" = "${via_agentd[$key]}" ]; then
    same=$((same + 1)); mark="(= zabbix_agentd)"
  else
    differ=$((differ + 1)); mark="(zabbix_agentd: ${via_agentd[$key]})"
  fi
  printf '%-62s %s %s\n' "$key" "$value" "$mark"
done
echo
echo "through agent 2: $same of $((same + differ)) answers identical to zabbix_agentd's"
[ "$differ" -eq 0 ]
