//! The Zabbix agent 2 loadable plugin: agent 2 runs it as
//! `zabbix-agent2-plugin-exalate SOCKET true|false`. Everything is in
//! `exalate_zabbix::agent2`.

fn main() {
    exalate_zabbix::agent2::main()
}
