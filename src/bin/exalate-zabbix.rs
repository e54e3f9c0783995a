//! `exalate-zabbix check [--config PATH] [--json] [--user NAME]`: the
//! whole configuration checked in one run. Everything is in
//! `exalate_zabbix::check`.

fn main() {
    exalate_zabbix::check::main()
}
