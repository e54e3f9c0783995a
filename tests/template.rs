//! The Zabbix templates, both packaged files (packaging/template/
//! template_exalate_zabbix.yaml, 6.0, and template_exalate_zabbix_7.0.yaml,
//! 7.0), against the module itself: every key Zabbix polls is one the
//! module's item table serves and answers against the fake node, every
//! JSONPath names a field `exalate.relation.stats` really returns, every
//! reference inside each template resolves, the dashboards show every queue
//! of every relation (on 7.0 also as current values), the active-checks
//! variant is the same template polled as active checks, on 7.0 every item
//! that asks a node has its own timeout, and each file is a well-formed
//! export of its version. Both are generated from packaging/template/
//! source.yaml (template/generate.rs): a test fails when they drift from it.
//! (`make package-test` also runs Zabbix 6.0's own import validator on the
//! 6.0 file, `make e2e` imports each file into a live Zabbix of its version.)

pub mod common;
#[path = "template/generate.rs"]
mod generate;

use common::{add_secret, write_file, TestEnv, CMONITOR_PATH, CMONITOR_TOKEN};
use exalate_zabbix::agentd::{zbx_module_item_list, CF_HAVEPARAMS};
use exalate_zabbix::items::{self, Item};
use exalate_zabbix::Monitor;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use yaml_rust2::{Yaml, YamlLoader};

/// The 6.0 export (imports into 6.0 and later).
const TEMPLATE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/template/template_exalate_zabbix.yaml"
);
/// The 7.0 export.
const TEMPLATE_70_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/template/template_exalate_zabbix_7.0.yaml"
);
/// The template's README: its tables are generated too.
const README_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/template/README.md");
/// What both are generated from (tests/template/generate.rs).
const SOURCE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/template/source.yaml"
);
const TEMPLATE_NAME: &str = generate::TEMPLATE;
/// The same items as active checks, for agents the server cannot reach.
const ACTIVE_TEMPLATE_NAME: &str = "Exalate by Zabbix agent active";
/// Item types whose key the agent (and so the module) answers.
const POLLED_TYPES: [&str; 2] = ["ZABBIX_PASSIVE", "ZABBIX_ACTIVE"];

/// Both packaged files, by their version ("6.0", "7.0"), as JSON.
fn exports() -> [(&'static str, Value); 2] {
    [
        ("6.0", template_export(TEMPLATE_PATH)),
        ("7.0", template_export(TEMPLATE_70_PATH)),
    ]
}

/// A template file as JSON, every scalar a string as Zabbix's importer requires.
fn template_export(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("the template is valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    let mut non_strings = Vec::new();
    let value = to_json(&docs[0], "", &mut non_strings);
    assert!(
        non_strings.is_empty(),
        "Zabbix's importer wants every value a string; quote these: {non_strings:#?}"
    );
    value
}

fn to_json(yaml: &Yaml, path: &str, non_strings: &mut Vec<String>) -> Value {
    match yaml {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, y)| to_json(y, &format!("{path}[{i}]"), non_strings))
                .collect(),
        ),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (k, v) in hash {
                let key = k.as_str().expect("string keys").to_string();
                let child = to_json(v, &format!("{path}/{key}"), non_strings);
                assert!(map.insert(key, child).is_none(), "duplicate key in {path}");
            }
            Value::Object(map)
        }
        other => {
            non_strings.push(format!("{path}: {other:?}"));
            Value::Null
        }
    }
}

/// The module template (passive checks).
fn the_template(export: &Value) -> &Value {
    template_named(export, TEMPLATE_NAME)
}

fn template_named<'a>(export: &'a Value, name: &str) -> &'a Value {
    let templates = export["zabbix_export"]["templates"].as_array().unwrap();
    let names: Vec<&str> = templates.iter().map(|t| text(t, "template")).collect();
    assert_eq!(
        names,
        [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME],
        "the templates"
    );
    templates
        .iter()
        .find(|t| text(t, "template") == name)
        .unwrap()
}

fn list<'a>(object: &'a Value, key: &str) -> &'a [Value] {
    object
        .get(key)
        .map(|v| {
            v.as_array()
                .unwrap_or_else(|| panic!("{key} is a list"))
                .as_slice()
        })
        .unwrap_or_default()
}

fn text<'a>(object: &'a Value, key: &str) -> &'a str {
    object
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {object}"))
}

fn item_type(item: &Value) -> &str {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("ZABBIX_PASSIVE")
}

/// A Zabbix item key `name[p1,"p 2",...]`: its name and unquoted parameters
/// (None when it has no brackets).
fn parse_key(key: &str) -> (String, Option<Vec<String>>) {
    let Some(open) = key.find('[') else {
        return (key.to_string(), None);
    };
    assert!(key.ends_with(']'), "key {key} does not end with ]");
    let inner = &key[open + 1..key.len() - 1];
    let mut params = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut param = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') if chars.peek() == Some(&'"') => param.push(chars.next().unwrap()),
                    Some('"') => break,
                    Some(c) => param.push(c),
                    None => panic!("unterminated quote in {key}"),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            assert!(
                matches!(chars.peek(), None | Some(',')),
                "text after a quoted parameter in {key}"
            );
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                assert!(
                    c != ']' && c != '"',
                    "unquoted {c:?} in a parameter of {key}"
                );
                param.push(c);
                chars.next();
            }
        }
        params.push(param);
        if chars.next().is_none() {
            break;
        }
    }
    (key[..open].to_string(), Some(params))
}

/// The module's own item table, as the agent reads it: key and CF_HAVEPARAMS.
fn module_item_table() -> BTreeMap<String, bool> {
    let mut table = BTreeMap::new();
    let mut entry = zbx_module_item_list();
    // SAFETY: the table is static and ends with a NULL key; read only.
    unsafe {
        while !(*entry).key.is_null() {
            let key = CStr::from_ptr((*entry).key).to_str().unwrap().to_string();
            table.insert(key, (*entry).flags & CF_HAVEPARAMS != 0);
            entry = entry.add(1);
        }
    }
    table
}

/// Every item, item prototype and discovery rule, with the discovery rule
/// each belongs to (None: a template item).
fn all_items(template: &Value) -> Vec<(Option<&Value>, &Value)> {
    let mut all: Vec<(Option<&Value>, &Value)> =
        list(template, "items").iter().map(|i| (None, i)).collect();
    for rule in list(template, "discovery_rules") {
        all.push((None, rule));
        all.extend(
            list(rule, "item_prototypes")
                .iter()
                .map(|i| (Some(rule), i)),
        );
    }
    all
}

/// `key` as Zabbix polls it on a host: LLD macros as discovery fills them
/// in, user macros at the template's values.
fn with_macros(key: &str, template: &Value) -> String {
    let mut key = key
        .replace("{#NODE}", "demo")
        .replace("{#RELATION}", "AllContent");
    for m in list(template, "macros") {
        key = key.replace(text(m, "macro"), text(m, "value"));
    }
    key
}

#[test]
fn the_module_item_table_matches_the_item_enum() {
    let table = module_item_table();
    let keys: BTreeSet<&str> = Item::ALL.iter().map(|i| i.key()).collect();
    assert_eq!(
        table.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        keys
    );
}

#[test]
fn every_polled_key_is_served_by_the_module() {
    let table = module_item_table();
    // Node demo serves its issuehub 4.0 API to the tests' user: the node
    // totals and connections answer.
    let env = TestEnv::with_node(
        "template-keys",
        fake_exalate_node::NodeConfig::demo().with_api(common::test_api()),
    );
    // Node demo has a customer monitor endpoint: exalate.node.errors answers.
    let cmonitor = fake_exalate_node::FakeNode::start(
        fake_exalate_node::NodeConfig::default().with_cmonitor(fake_exalate_node::Cmonitor::new(
            fake_exalate_node::CmonitorAuth::Bearer(CMONITOR_TOKEN.into()),
            2,
        )),
    )
    .unwrap();
    add_secret(CMONITOR_TOKEN);
    write_file(&env.dir.join("cmonitor.token"), CMONITOR_TOKEN, 0o600);
    common::add_api_secrets();
    write_file(&env.dir.join("api.password"), common::API_PASSWORD, 0o600);
    env.write_config(&env.node_section(
        "demo",
        &[
            &format!("cmonitor_url = \"{}{CMONITOR_PATH}\"", cmonitor.url()),
            &format!(
                "cmonitor_token_file = \"{}\"",
                env.dir.join("cmonitor.token").display()
            ),
            &common::api_keys(&env.dir, "basic"),
        ],
    ));
    let monitor = Monitor::new_lazy(env.config_path.clone());
    for (version, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let mut served = BTreeSet::new();
            for (rule, item) in all_items(template) {
                if !POLLED_TYPES.contains(&item_type(item)) {
                    continue;
                }
                let key = text(item, "key");
                let (name, params) = parse_key(key);
                let has_params = *table.get(&name).unwrap_or_else(|| {
                    panic!(
                        "{key}: the module serves no {name}; it serves {:?}",
                        table.keys()
                    )
                });
                assert!(
                    has_params || params.is_none(),
                    "{key}: the module's {name} takes no parameters (no CF_HAVEPARAMS)"
                );
                // Inside a discovery rule, parameters are LLD macros of that rule.
                if let Some(params) = &params {
                    for p in params {
                        assert!(
                            !p.contains("{#") || rule.is_some(),
                            "{key}: LLD macro outside a discovery rule"
                        );
                    }
                }
                // The key as discovery fills it in, answered by the module against the fake node.
                let item_enum = Item::ALL.into_iter().find(|i| i.key() == name).unwrap();
                let (_, params) = parse_key(&with_macros(key, template));
                let params = params.unwrap_or_default();
                let params: Vec<&str> = params.iter().map(String::as_str).collect();
                let value =
                    items::get_value(&monitor, item_enum, &params, items::ItemTiming::now(None))
                        .unwrap_or_else(|e| panic!("{key}: the module fails: {}", e.message()));
                env.assert_no_secrets(&format!("{value:?}"));
                served.insert(name);
            }
            // Every key of the module is used, but queue.count: the six counts come
            // from the one relation.stats master, not from six polled items.
            let mut expected: BTreeSet<String> = table.keys().cloned().collect();
            expected.remove(Item::QueueCount.key());
            assert_eq!(
                served, expected,
                "{version} {name}: keys of the module the template uses"
            );
        }
    }
}

#[test]
fn every_jsonpath_names_a_field_of_relation_stats() {
    let env = TestEnv::new("template-jsonpath");
    let monitor = Monitor::new_lazy(env.config_path.clone());
    let stats: Value =
        serde_json::from_str(&monitor.relation_stats("demo", "AllContent").unwrap()).unwrap();
    let fields = stats.as_object().unwrap();
    for (version, export) in exports() {
        let template = the_template(&export);
        let mut used = BTreeSet::new();
        for (_, item) in all_items(template) {
            let Some(master) = item.get("master_item") else {
                continue;
            };
            let (master_name, _) = parse_key(text(master, "key"));
            if master_name != "exalate.relation.stats" {
                continue;
            }
            let key = text(item, "key");
            let steps = list(item, "preprocessing");
            let jsonpaths: Vec<&str> = steps
                .iter()
                .filter(|s| text(s, "type") == "JSONPATH")
                .map(|s| list(s, "parameters")[0].as_str().unwrap())
                .collect();
            assert_eq!(jsonpaths.len(), 1, "{key}: one JSONPath step");
            assert_eq!(text(&steps[0], "type"), "JSONPATH", "{key}: JSONPath first");
            let path = jsonpaths[0].strip_prefix("$.").unwrap_or_else(|| {
                panic!("{key}: JSONPath {} is not $.field[.field]", jsonpaths[0])
            });
            // `$.field` or, inside an object such as oldest_event_id, `$.field.queue`.
            let (field, inner) = match path.split_once('.') {
                Some((field, inner)) => (field, Some(inner)),
                None => (path, None),
            };
            let value = fields.get(field).unwrap_or_else(|| {
                panic!(
                    "{key}: exalate.relation.stats has no {field}; it has {:?}",
                    fields.keys()
                )
            });
            let value = match inner {
                None => value,
                Some(inner) => {
                    // The queue the key names is the one the path reads.
                    let (_, params) = parse_key(key);
                    assert_eq!(
                        params.as_ref().and_then(|p| p.last()).map(String::as_str),
                        Some(inner),
                        "{key}: reads {path}"
                    );
                    value.get(inner).unwrap_or_else(|| {
                        panic!("{key}: exalate.relation.stats has no {path}: {value}")
                    })
                }
            };
            // Numbers go to numeric items, the reasons object to a text item.
            let value_type = item
                .get("value_type")
                .and_then(Value::as_str)
                .unwrap_or("UNSIGNED");
            match value {
                Value::Number(_) => assert_eq!(value_type, "UNSIGNED", "{key}"),
                _ => assert_eq!(value_type, "TEXT", "{key}"),
            }
            used.insert(field.to_string());
        }
        assert_eq!(
            used,
            fields.keys().cloned().collect::<BTreeSet<_>>(),
            "{version}: every field of exalate.relation.stats has its dependent item"
        );
    }
}

/// The one discovery rule of `template` whose prototypes ask `key`: a rule
/// on `exalate.discovery` that keeps the rows whose `flag` is 1.
fn node_rule<'a>(template: &'a Value, key: &str, flag: &str, version: &str) -> &'a Value {
    let rules: Vec<&Value> = list(template, "discovery_rules")
        .iter()
        .filter(|r| {
            list(r, "item_prototypes")
                .iter()
                .any(|i| parse_key(text(i, "key")).0 == key)
        })
        .collect();
    assert_eq!(rules.len(), 1, "{version}: one rule has {key}");
    let rule = rules[0];
    assert_eq!(text(&rule["master_item"], "key"), "exalate.discovery");
    let conditions = list(&rule["filter"], "conditions");
    assert!(
        conditions.iter().any(|c| text(c, "macro") == flag
            && text(c, "value") == "^1$"
            && c.get("operator").is_none()),
        "{version}: filter on {flag}: {conditions:?}"
    );
    rule
}

/// `exalate.node.errors` exists only where discovery says the node has a
/// customer monitor endpoint: its rule keeps rows with `{#CMONITOR}` 1
/// (a user without the endpoint never sees an unsupported item), with the
/// node filters of the other rules, one row per node.
#[test]
fn node_errors_only_where_the_node_has_the_endpoint() {
    for (version, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let rule = node_rule(template, "exalate.node.errors", "{#CMONITOR}", version);
            let conditions = list(&rule["filter"], "conditions");
            assert_eq!(text(&rule["filter"], "evaltype"), "AND");
            for m in [
                "{$EXALATE.LLD.FILTER.NODE.MATCHES}",
                "{$EXALATE.LLD.FILTER.NODE.NOT_MATCHES}",
            ] {
                assert!(conditions.iter().any(|c| text(c, "value") == m), "{m}");
            }
            let script = list(&list(rule, "preprocessing")[0], "parameters")[0]
                .as_str()
                .unwrap();
            assert!(script.contains("seen[node]") && script.contains("{#CMONITOR}"));
            // Nowhere else.
            for (other, item) in all_items(template) {
                if parse_key(text(item, "key")).0 == "exalate.node.errors" {
                    assert_eq!(other.map(|r| text(r, "key")), Some(text(rule, "key")));
                }
            }
        }
    }
}

/// The discovery rows of a node watched only through its issuehub 4.0 API
/// (no relations: one row, `{#RELATION}` empty) and of a node with
/// relations and no API credentials, through each rule's filter as Zabbix
/// applies it (the template's macro values): the relation rule never makes
/// items for the empty relation, the node API rule keeps the API node
/// alone, the node rule both.
#[test]
fn each_rule_keeps_the_discovery_rows_it_is_for() {
    let env = TestEnv::new("template-rows");
    common::add_api_secrets();
    write_file(&env.dir.join("api.password"), common::API_PASSWORD, 0o600);
    env.write_config(&format!(
        "{}[nodes.onprem]\nurl = \"{}\"\n{}",
        env.node_section("demo", &[]),
        env.node.url(),
        common::api_keys(&env.dir, "basic")
    ));
    let monitor = Monitor::new_lazy(env.config_path.clone());
    let rows: Vec<Value> = serde_json::from_str(&monitor.discovery().unwrap()).unwrap();
    assert!(
        rows.iter()
            .any(|r| r["{#NODE}"] == "onprem" && r["{#RELATION}"] == "" && r["{#API}"] == "1"),
        "{rows:?}"
    );
    for (version, export) in exports() {
        let template = the_template(&export);
        let macros: BTreeMap<&str, &str> = list(template, "macros")
            .iter()
            .map(|m| (text(m, "macro"), text(m, "value")))
            .collect();
        let kept = |rule_key: &str| -> BTreeSet<(String, String)> {
            let rule = list(template, "discovery_rules")
                .iter()
                .find(|r| text(r, "key") == rule_key)
                .unwrap_or_else(|| panic!("{version}: no rule {rule_key}"));
            assert_eq!(text(&rule["filter"], "evaltype"), "AND", "{rule_key}");
            let conditions = list(&rule["filter"], "conditions");
            rows.iter()
                .filter(|row| {
                    conditions.iter().all(|c| {
                        let value = row[text(c, "macro")].as_str().unwrap_or("");
                        let pattern = text(c, "value");
                        let pattern = macros.get(pattern).copied().unwrap_or(pattern);
                        let matches = lld_filter_matches(pattern, value);
                        match c.get("operator").and_then(Value::as_str) {
                            None | Some("MATCHES_REGEX") => matches,
                            Some("NOT_MATCHES_REGEX") => !matches,
                            Some(other) => panic!("{rule_key}: operator {other}"),
                        }
                    })
                })
                .map(|row| {
                    let field = |m: &str| row[m].as_str().unwrap().to_string();
                    (field("{#NODE}"), field("{#RELATION}"))
                })
                .collect()
        };
        let nodes = |pairs: BTreeSet<(String, String)>| -> BTreeSet<String> {
            pairs.into_iter().map(|(node, _)| node).collect()
        };
        let relations = kept("exalate.relations.discovery");
        assert!(
            relations.iter().all(|(_, relation)| !relation.is_empty()),
            "{version}: the relation rule keeps an empty relation: {relations:?}"
        );
        assert_eq!(relations.len(), 3, "{version}: demo's three relations");
        assert_eq!(
            nodes(kept("exalate.nodes.api.discovery")),
            ["onprem".to_string()].into(),
            "{version}: node API discovery"
        );
        assert_eq!(
            nodes(kept("exalate.nodes.discovery")),
            ["demo".to_string(), "onprem".to_string()].into(),
            "{version}: node discovery"
        );
        assert!(
            nodes(kept("exalate.nodes.errors.discovery")).is_empty(),
            "{version}: no node has a customer monitor endpoint"
        );
    }
}

/// Whether Zabbix's LLD filter regular expression `pattern` matches
/// `value`, for the patterns the template's filters use (a test without
/// a regex crate: any other pattern fails here, to be added).
fn lld_filter_matches(pattern: &str, value: &str) -> bool {
    match pattern {
        ".*" => true,
        ".+" => !value.is_empty(),
        "^1$" => value == "1",
        "CHANGE_IF_NEEDED" => value.contains(pattern),
        other => panic!("teach lld_filter_matches the pattern {other}"),
    }
}

/// The node-wide items of the issuehub 4.0 API exist only where discovery
/// says the node has API credentials (`{#API}` 1), one set per node: both
/// totals with a threshold trigger (the node as context) and a growth
/// trigger over a whole window, and the connections (one request) with the
/// count of those not ACTIVE and its trigger over a whole window.
#[test]
fn node_api_items_only_where_the_node_has_api_credentials() {
    let t = TEMPLATE_NAME;
    for (version, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let rule = node_rule(template, "exalate.node.queue", "{#API}", version);
            let script = list(&list(rule, "preprocessing")[0], "parameters")[0]
                .as_str()
                .unwrap();
            assert!(script.contains("seen[node]") && script.contains("{#API}"));
            let prototypes: BTreeMap<&str, &Value> = list(rule, "item_prototypes")
                .iter()
                .map(|i| (text(i, "key"), i))
                .collect();
            let expressions = |key: &str| -> Vec<String> {
                list(prototypes[key], "trigger_prototypes")
                    .iter()
                    .map(|tr| text(tr, "expression").replace(name, t))
                    .collect()
            };
            for direction in ["outgoing", "incoming"] {
                let key = format!("exalate.node.queue[{{#NODE}},{direction}]");
                let item = prototypes
                    .get(key.as_str())
                    .unwrap_or_else(|| panic!("{version} {name}: no {key}"));
                assert!(
                    list(item, "tags")
                        .iter()
                        .any(|tag| text(tag, "tag") == "node" && text(tag, "value") == "{#NODE}"),
                    "{key}: node tag"
                );
                let item_ref = format!("/{t}/{key}");
                assert_eq!(
                    expressions(&key),
                    [
                        format!("min({item_ref},{{$EXALATE.NODE.QUEUE.MAX.TIME}})>{{$EXALATE.NODE.QUEUE.MAX:\"{{#NODE}}\"}}"),
                        format!("min({item_ref},{{$EXALATE.NODE.QUEUE.GROWTH.TIME}})>last({item_ref},#1:now-{{$EXALATE.NODE.QUEUE.GROWTH.TIME}})"),
                    ],
                    "{version} {name}: {key}"
                );
            }
            let master = "exalate.node.connections[{#NODE}]";
            assert_eq!(text(prototypes[master], "value_type"), "TEXT");
            let inactive = "exalate.node.connections.inactive[{#NODE}]";
            let names = "exalate.node.connections.inactive.names[{#NODE}]";
            for key in [inactive, names] {
                let item = prototypes[key];
                assert_eq!(item_type(item), "DEPENDENT", "{key}");
                assert_eq!(text(&item["master_item"], "key"), master, "{key}");
                let step = &list(item, "preprocessing")[0];
                assert_eq!(text(step, "type"), "JAVASCRIPT", "{key}");
                let js = list(step, "parameters")[0].as_str().unwrap();
                assert!(js.contains("status !== 'ACTIVE'"), "{key}: {js}");
            }
            let window = "{$EXALATE.CONNECTION.INACTIVE.TIME}";
            assert_eq!(
                expressions(inactive),
                [format!(
                    "min(/{t}/{inactive},{window})>0 and length(last(/{t}/{names}))>0 and last(/{t}/{inactive},#1:now-{window})>0"
                )],
                "{version} {name}"
            );
            // Nowhere else (the connection discovery's master aside).
            for (other, item) in all_items(template) {
                let key = text(item, "key");
                let (key_name, _) = parse_key(key);
                if key_name == "exalate.node.queue"
                    || key.ends_with("[{#NODE}]")
                        && key_name.starts_with("exalate.node.connections")
                {
                    assert_eq!(
                        other.map(|r| text(r, "key")),
                        Some(text(rule, "key")),
                        "{key}"
                    );
                }
            }
        }
    }
}

/// The connections of one node, discovered from a template item (Zabbix
/// 6.0 and 7.0 let a dependent discovery rule depend on an item, never on a
/// prototype): disabled until the host enables it, the rule and each
/// connection's status dependent on it (no request of their own), the
/// status found by the connection's name in double quotes (which Zabbix
/// escapes in a name: quotes, backslashes; spaces, '/', non-ASCII as is).
#[test]
fn connection_discovery_depends_on_one_item() {
    for (version, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let rule = list(template, "discovery_rules")
                .iter()
                .find(|r| text(r, "key") == "exalate.connections.discovery")
                .unwrap_or_else(|| panic!("{version} {name}: no connection discovery"));
            assert_eq!(item_type(rule), "DEPENDENT");
            let master_key = text(&rule["master_item"], "key");
            assert_eq!(
                master_key,
                "exalate.node.connections[{$EXALATE.CONNECTIONS.NODE}]"
            );
            let master = list(template, "items")
                .iter()
                .find(|i| text(i, "key") == master_key)
                .unwrap_or_else(|| panic!("{version} {name}: the master is a template item"));
            assert!(POLLED_TYPES.contains(&item_type(master)));
            assert_eq!(text(master, "status"), "DISABLED", "{version} {name}");
            assert_eq!(text(master, "value_type"), "TEXT");
            let paths: BTreeMap<&str, &str> = list(rule, "lld_macro_paths")
                .iter()
                .map(|m| (text(m, "lld_macro"), text(m, "path")))
                .collect();
            assert_eq!(paths.get("{#CONNECTION}"), Some(&"$.name"));
            let prototypes = list(rule, "item_prototypes");
            assert!(!prototypes.is_empty());
            for item in prototypes {
                let key = text(item, "key");
                assert_eq!(item_type(item), "DEPENDENT", "{key}");
                assert_eq!(text(&item["master_item"], "key"), master_key, "{key}");
            }
            let status = prototypes
                .iter()
                .find(|i| text(i, "key") == "exalate.connection.status[{#CONNECTION}]")
                .expect("a status item per connection");
            assert_eq!(text(status, "value_type"), "CHAR");
            let steps = list(status, "preprocessing");
            assert_eq!(text(&steps[0], "type"), "JSONPATH");
            assert_eq!(
                list(&steps[0], "parameters")[0].as_str().unwrap(),
                r#"$[?(@.name == "{#CONNECTION}")].status.first()"#
            );
        }
    }
}

/// The stuck triggers: one per waiting queue, on its oldest event, firing
/// only on a whole window of one event with data now, the queue not empty.
#[test]
fn stuck_triggers_need_a_whole_window_of_one_event() {
    for (version, export) in exports() {
        let template = the_template(&export);
        let mut queues = BTreeSet::new();
        for (_, item) in all_items(template) {
            let (key_name, params) = parse_key(text(item, "key"));
            if key_name != "exalate.relation.oldest" {
                continue;
            }
            let queue = params.unwrap()[2].clone();
            let triggers = list(item, "trigger_prototypes");
            assert_eq!(triggers.len(), 1, "{version}: {queue}");
            let expression = text(&triggers[0], "expression");
            let window = "{$EXALATE.QUEUE.STUCK.TIME:\"{#RELATION}\"}";
            for part in [
                format!("#1:now-{window})=last("),
                format!("min(/{TEMPLATE_NAME}/exalate.relation.oldest[{{#NODE}},{{#RELATION}},{queue}],{window})=max("),
                format!("last(/{TEMPLATE_NAME}/exalate.relation.queue[{{#NODE}},{{#RELATION}},{queue}])>0"),
                "*{$EXALATE.STATS.INTERVAL}>=".to_string(),
                "nodata(".to_string(),
            ] {
                assert!(expression.contains(&part), "{version} {queue}: {part} in {expression}");
            }
            let event_name = text(&triggers[0], "event_name");
            assert!(
                event_name.contains("{ITEM.VALUE1}") && event_name.contains(window),
                "{event_name}"
            );
            queues.insert(queue);
        }
        assert_eq!(
            queues,
            [
                "blobrequests",
                "blobresponses",
                "syncrequests",
                "syncresponses"
            ]
            .map(String::from)
            .into(),
            "{version}: the four waiting queues"
        );
    }
}

#[test]
fn every_reference_inside_the_template_resolves() {
    for (_, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            references_resolve(template_named(&export, name), name);
        }
    }
}

fn references_resolve(template: &Value, name: &str) {
    let template_value = template;
    assert_eq!(text(template_value, "template"), name);

    let macros: BTreeSet<String> = list(template_value, "macros")
        .iter()
        .map(|m| text(m, "macro").to_string())
        .collect();
    let valuemaps: BTreeSet<&str> = list(template_value, "valuemaps")
        .iter()
        .map(|m| text(m, "name"))
        .collect();
    let template_keys: BTreeSet<&str> = list(template_value, "items")
        .iter()
        .map(|i| text(i, "key"))
        .collect();

    // Item keys are unique across items, prototypes and rules.
    let mut seen = BTreeSet::new();
    for (_, item) in all_items(template) {
        assert!(
            seen.insert(text(item, "key").to_string()),
            "duplicate key {}",
            text(item, "key")
        );
    }

    let mut scopes: Vec<(Option<&Value>, Vec<&Value>)> =
        vec![(None, list(template_value, "items").iter().collect())];
    for rule in list(template_value, "discovery_rules") {
        scopes.push((Some(rule), list(rule, "item_prototypes").iter().collect()));
        if let Some(master) = rule.get("master_item") {
            assert!(
                template_keys.contains(text(master, "key")),
                "rule master {master}"
            );
        }
    }
    for (rule, items) in &scopes {
        let rule_name = rule.map_or("template", |r| text(r, "name"));
        let lld_macros: BTreeSet<&str> = match rule.map(|r| text(r, "key")) {
            Some("exalate.nodes.discovery") => ["{#NODE}"].into(),
            Some("exalate.nodes.errors.discovery") => ["{#NODE}", "{#CMONITOR}"].into(),
            Some("exalate.nodes.api.discovery") => ["{#NODE}", "{#API}"].into(),
            // Rows of exalate.node.connections: the macros are its paths.
            Some("exalate.connections.discovery") => list(rule.unwrap(), "lld_macro_paths")
                .iter()
                .map(|m| text(m, "lld_macro"))
                .collect(),
            Some(_) => ["{#NODE}", "{#RELATION}"].into(),
            None => BTreeSet::new(),
        };
        let keys: BTreeSet<&str> = items.iter().map(|i| text(i, "key")).collect();
        let visible = |key: &str| keys.contains(key) || template_keys.contains(key);
        let mut triggers: Vec<&Value> = Vec::new();
        for item in items {
            let key = text(item, "key");
            for lld in lld_macro_names(key) {
                assert!(
                    lld_macros.contains(lld.as_str()),
                    "{key}: {lld} is not a macro of {rule_name}"
                );
            }
            if item_type(item) == "DEPENDENT" {
                let master = text(&item["master_item"], "key");
                assert!(visible(master), "{key}: master {master} not in {rule_name}");
            }
            if let Some(map) = item.get("valuemap") {
                assert!(valuemaps.contains(text(map, "name")), "{key}: valuemap");
            }
            for trigger in list(item, "triggers")
                .iter()
                .chain(list(item, "trigger_prototypes"))
            {
                let refs = expression_keys(text(trigger, "expression"), name);
                assert!(refs.contains(key), "{key}: a trigger under it must use it");
                triggers.push(trigger);
            }
        }
        if let Some(rule) = rule {
            triggers.extend(list(rule, "trigger_prototypes"));
            for graph in list(rule, "graph_prototypes") {
                for gi in list(graph, "graph_items") {
                    assert_eq!(text(&gi["item"], "host"), name);
                    assert!(keys.contains(text(&gi["item"], "key")), "graph item {gi}");
                }
            }
        }
        let names: BTreeSet<(&str, &str)> = triggers
            .iter()
            .map(|t| (text(t, "name"), text(t, "expression")))
            .collect();
        for trigger in &triggers {
            let expression = text(trigger, "expression");
            for key in expression_keys(expression, name) {
                assert!(
                    visible(&key),
                    "{expression}: {key} is not an item of {rule_name}"
                );
            }
            for field in ["name", "event_name", "expression", "opdata", "description"] {
                if let Some(s) = trigger.get(field).and_then(Value::as_str) {
                    for m in user_macro_names(s) {
                        assert!(macros.contains(&m), "{field} {s}: undefined macro {m}");
                    }
                }
            }
            assert!(
                trigger.get("event_name").is_some(),
                "{expression}: event_name"
            );
            for dep in list(trigger, "dependencies") {
                let target = (text(dep, "name"), text(dep, "expression"));
                assert!(
                    names.contains(&target),
                    "dependency {dep} not in {rule_name}"
                );
            }
        }
        for item in items {
            for field in ["delay", "name", "description"] {
                if let Some(s) = item.get(field).and_then(Value::as_str) {
                    for m in user_macro_names(s) {
                        assert!(
                            macros.contains(&m),
                            "{}: undefined macro {m}",
                            text(item, "key")
                        );
                    }
                }
            }
        }
    }
}

/// `/Template/key` references of a trigger expression.
fn expression_keys(expression: &str, template: &str) -> BTreeSet<String> {
    let prefix = format!("/{template}/");
    let mut keys = BTreeSet::new();
    let mut rest = expression;
    while let Some(at) = rest.find(&prefix) {
        let after = &rest[at + prefix.len()..];
        // The key ends at the `,` or `)` outside its brackets.
        let mut depth = 0;
        let mut quoted = false;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '[' if !quoted => depth += 1,
                ']' if !quoted => depth -= 1,
                ',' | ')' if !quoted && depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        keys.insert(after[..end].to_string());
        rest = &after[end..];
    }
    assert!(
        !keys.is_empty(),
        "{expression} references no item of the template"
    );
    keys
}

/// `{$NAME}` or `{$NAME:context}` user macros, by name.
fn user_macro_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("{$") {
        let after = &rest[at..];
        let end = after.find(['}', ':']).expect("macro end");
        names.push(format!("{}}}", &after[..end]));
        rest = &after[end..];
    }
    names
}

fn lld_macro_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("{#") {
        let after = &rest[at..];
        let end = after.find('}').expect("macro end") + 1;
        names.push(after[..end].to_string());
        rest = &after[end..];
    }
    names
}

#[test]
fn each_file_is_a_zabbix_export_of_its_version() {
    for (version, export) in exports() {
        let v70 = version == "7.0";
        let root = export.as_object().unwrap();
        assert_eq!(root.keys().collect::<Vec<_>>(), ["zabbix_export"]);
        let zx = &export["zabbix_export"];
        assert_eq!(zx["version"], version);
        // 7.0 names the template groups apart from the host groups.
        let groups = list(zx, if v70 { "template_groups" } else { "groups" });
        assert!(!groups.is_empty(), "{version}: groups");
        let group_names: BTreeSet<&str> = groups.iter().map(|g| text(g, "name")).collect();
        for template in list(zx, "templates") {
            for g in list(template, "groups") {
                assert!(
                    group_names.contains(text(g, "name")),
                    "{version}: template group {g} not exported"
                );
            }
            if v70 {
                assert_eq!(text(&template["vendor"], "name"), "exalate-zabbix");
            }
        }
        check(
            &schema::export(v70),
            zx,
            &format!("{version}:/zabbix_export"),
        );
        uuids_are_unique_uuid4s(zx, version);
    }
    // The same objects keep the same uuids in both files: importing the 7.0
    // file over the 6.0 one (after an upgrade) updates them in place.
    let [(_, e60), (_, e70)] = exports();
    let (mut u60, mut u70) = (Vec::new(), Vec::new());
    collect_uuids(&e60, &mut u60);
    collect_uuids(&e70, &mut u70);
    let u70: BTreeSet<String> = u70.into_iter().collect();
    for uuid in &u60 {
        assert!(
            u70.contains(uuid),
            "the 6.0 file's uuid {uuid} is not in the 7.0 file"
        );
    }
}

fn uuids_are_unique_uuid4s(zx: &Value, version: &str) {
    // uuids: 32 lowercase hex digits of a UUIDv4 (the importer checks), unique.
    let mut uuids = Vec::new();
    collect_uuids(zx, &mut uuids);
    let unique: BTreeSet<&String> = uuids.iter().collect();
    assert_eq!(unique.len(), uuids.len(), "{version}: duplicate uuid");
    for uuid in &uuids {
        assert!(
            uuid.len() == 32
                && uuid
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "uuid {uuid} is not 32 lowercase hex digits"
        );
        assert!(
            &uuid[12..13] == "4" && "89ab".contains(&uuid[16..17]),
            "uuid {uuid} is not a UUIDv4 (version 4, variant 8-b)"
        );
    }
}

/// On 7.0 every item that asks a node has its own timeout, the macro
/// `{$EXALATE.TIMEOUT}` (with the relation as context where there is one);
/// the module stops at the smaller of it and the config's `timeout`. Items
/// that ask no node keep the default; 6.0 knows no item timeouts.
#[test]
fn on_7_0_every_item_that_asks_a_node_has_the_timeout_macro() {
    for (version, export) in exports() {
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let macros: BTreeMap<&str, &str> = list(template, "macros")
                .iter()
                .map(|m| (text(m, "macro"), text(m, "value")))
                .collect();
            for (_, item) in all_items(template) {
                let key = text(item, "key");
                let timeout = item.get("timeout").and_then(Value::as_str);
                if version == "6.0" {
                    assert_eq!(timeout, None, "6.0 {key}: no item timeouts in 6.0");
                    continue;
                }
                // Every agent item asks a node but these two, which read the
                // module's own configuration; per relation, with its context.
                let (key_name, _) = parse_key(key);
                let asks_no_node = ["exalate.discovery", "exalate.module.version"];
                let want = if !POLLED_TYPES.contains(&item_type(item))
                    || asks_no_node.contains(&key_name.as_str())
                {
                    None
                } else if key.contains("{#RELATION}") {
                    Some(r#"{$EXALATE.TIMEOUT:"{#RELATION}"}"#)
                } else {
                    Some("{$EXALATE.TIMEOUT}")
                };
                assert_eq!(timeout, want, "{version} {name} {key}: timeout");
            }
            if version == "7.0" {
                assert_eq!(macros.get("{$EXALATE.TIMEOUT}"), Some(&"10s"), "{name}");
            } else {
                assert!(!macros.contains_key("{$EXALATE.TIMEOUT}"), "6.0 {name}");
            }
        }
    }
}

fn collect_uuids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "uuid" {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    collect_uuids(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_uuids(v, out)),
        _ => {}
    }
}

#[test]
fn the_active_template_is_the_module_template_as_active_checks() {
    for (version, export) in exports() {
        active_is_module_as_active(&export, version);
    }
}

/// The active agent's availability: an item of Zabbix's own "Zabbix agent
/// active" and the OS templates ("Linux by Zabbix agent active"), which a
/// host links beside ours; the same key in ours too and 7.0 refuses the
/// second link ("Cannot inherit item with key ...").
const AGENT_AVAILABILITY_KEY: &str = "zabbix[host,active_agent,available]";

fn active_is_module_as_active(export: &Value, version: &str) {
    let module = the_template(export);
    let active = template_named(export, ACTIVE_TEMPLATE_NAME);
    assert!(
        text(active, "description").contains("ServerActive="),
        "the active template's description tells how to set the agent up"
    );
    for template in [module, active] {
        assert!(
            !list(template, "items")
                .iter()
                .any(|i| text(i, "key") == AGENT_AVAILABILITY_KEY),
            "{version}: {AGENT_AVAILABILITY_KEY} belongs to \"Zabbix agent active\" \
             or the OS template, linked beside ours"
        );
    }
    // Everything else is the module template under the other name, every
    // polled item an active check; only uuids and the description differ.
    let mut expected = as_active(module, false);
    let mut actual = active.clone();
    for template in [&mut expected, &mut actual] {
        template.as_object_mut().unwrap().remove("description");
        strip_uuids(template);
    }
    assert_eq!(
        actual, expected,
        "{version}: the active template drifted from the module template"
    );
}

/// `value` with the module template's name replaced by the active one's and
/// every passive item (`item`: inside a list of items) made ZABBIX_ACTIVE.
fn as_active(value: &Value, item: bool) -> Value {
    match value {
        Value::String(s) if s == TEMPLATE_NAME => Value::String(ACTIVE_TEMPLATE_NAME.into()),
        Value::String(s) => Value::String(s.replace(
            &format!("/{TEMPLATE_NAME}/"),
            &format!("/{ACTIVE_TEMPLATE_NAME}/"),
        )),
        Value::Array(values) => Value::Array(values.iter().map(|v| as_active(v, item)).collect()),
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let items = k == "items" || k == "item_prototypes";
                    (k.clone(), as_active(v, items))
                })
                .collect();
            if item && item_type(value) == "ZABBIX_PASSIVE" {
                out.insert("type".into(), Value::String("ZABBIX_ACTIVE".into()));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn strip_uuids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("uuid");
            map.values_mut().for_each(strip_uuids);
        }
        Value::Array(values) => values.iter_mut().for_each(strip_uuids),
        _ => {}
    }
}

#[test]
fn the_dashboard_shows_the_queues_and_the_pending_errors_of_each_relation() {
    for (version, export) in exports() {
        // 6.4 made the grid 72 columns wide; 6.0 has 24.
        let grid = if version == "7.0" { 72 } else { 24 };
        let mut honeycombs = 0;
        for name in [TEMPLATE_NAME, ACTIVE_TEMPLATE_NAME] {
            let template = template_named(&export, name);
            let rules = list(template, "discovery_rules");
            let prototype_keys: BTreeSet<&str> = rules
                .iter()
                .flat_map(|r| list(r, "item_prototypes"))
                .map(|i| text(i, "key"))
                .collect();
            let item_keys: BTreeSet<&str> = list(template, "items")
                .iter()
                .map(|i| text(i, "key"))
                .collect();
            // Graph prototype name -> the item prototype keys it draws.
            let graphs: BTreeMap<&str, BTreeSet<&str>> = rules
                .iter()
                .flat_map(|r| list(r, "graph_prototypes"))
                .map(|g| {
                    let keys = list(g, "graph_items")
                        .iter()
                        .map(|gi| text(&gi["item"], "key"));
                    (text(g, "name"), keys.collect())
                })
                .collect();
            let dashboards = list(template, "dashboards");
            assert!(!dashboards.is_empty(), "{name}: a dashboard");
            let mut drawn_graphs = Vec::new();
            let mut shown_values: Vec<BTreeSet<String>> = Vec::new();
            for dashboard in dashboards {
                for page in list(dashboard, "pages") {
                    let mut cells = BTreeSet::new();
                    for widget in list(page, "widgets") {
                        let number = |field: &str, default: u32| {
                            widget
                                .get(field)
                                .map_or(default, |v| v.as_str().unwrap().parse().unwrap())
                        };
                        let (x, y) = (number("x", 0), number("y", 0));
                        let (width, height) = (number("width", 1), number("height", 2));
                        assert!(
                            x + width <= grid && (1..=32).contains(&height),
                            "{name}: widget {widget} off the grid"
                        );
                        for cell in
                            (x..x + width).flat_map(|cx| (y..y + height).map(move |cy| (cx, cy)))
                        {
                            assert!(cells.insert(cell), "{name}: widgets overlap at {cell:?}");
                        }
                        for field in list(widget, "fields") {
                            let value = &field["value"];
                            match text(field, "type") {
                            "GRAPH_PROTOTYPE" => {
                                let want = if version == "7.0" { "graphid.0" } else { "graphid" };
                                assert_eq!(text(field, "name"), want, "{version} {name}: {field}");
                                assert_eq!(text(value, "host"), name, "{name}: widget field {field}");
                                let keys = graphs.get(text(value, "name")).unwrap_or_else(|| {
                                    panic!("{name}: no graph prototype {}", text(value, "name"))
                                });
                                drawn_graphs.push(keys);
                            }
                            "ITEM_PROTOTYPE" => assert!(prototype_keys.contains(text(value, "key")), "{field}"),
                            "ITEM" => assert!(item_keys.contains(text(value, "key")), "{field}"),
                            "INTEGER" => assert!(value.as_str().unwrap().parse::<i64>().is_ok(), "{field}"),
                            "STRING" => {}
                            other => panic!("{name}: widget field type {other} refers to nothing the template has"),
                        }
                        }
                        if text(widget, "type") == "honeycomb" {
                            honeycombs += 1;
                            shown_values.push(honeycomb_items(widget, rules));
                        }
                    }
                }
            }
            let queue_key =
                |queue: &str| format!("exalate.relation.queue[{{#NODE}},{{#RELATION}},{queue}]");
            for queue in common::QUEUES {
                let key = queue_key(queue);
                assert!(
                    drawn_graphs.iter().any(|keys| keys.contains(key.as_str())),
                    "{name}: the dashboard draws no {key}"
                );
            }
            let errors: BTreeSet<String> = ["errorresponses", "bloberrorresponses"]
                .map(queue_key)
                .into();
            assert!(
                drawn_graphs.iter().any(|keys| keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<BTreeSet<_>>()
                    == errors),
                "{name}: the dashboard has no graph of the pending errors alone"
            );
            // 7.0: the current values at a glance, every queue in one honeycomb,
            // the pending errors alone in another.
            if version == "7.0" {
                let all: BTreeSet<String> = common::QUEUES.iter().map(|q| queue_key(q)).collect();
                assert!(
                    shown_values.contains(&all),
                    "{name}: no honeycomb of every queue: {shown_values:?}"
                );
                assert!(
                    shown_values.contains(&errors),
                    "{name}: no honeycomb of the pending errors: {shown_values:?}"
                );
            }
        }
        assert_eq!(
            honeycombs,
            if version == "7.0" { 4 } else { 0 },
            "{version}: honeycombs"
        );
    }
}

/// The keys of the item prototypes a honeycomb widget shows: item pattern
/// `*`, its item tags (operator 1: equals; evaltype_item 0: and/or, 2: or).
fn honeycomb_items(widget: &Value, rules: &[Value]) -> BTreeSet<String> {
    let fields: BTreeMap<&str, &str> = list(widget, "fields")
        .iter()
        .map(|f| (text(f, "name"), f["value"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        fields.get("items.0"),
        Some(&"*"),
        "{widget}: every item, chosen by tags"
    );
    assert!(fields.contains_key("reference"), "{widget}: a reference");
    let mut tags = Vec::new();
    for i in 0.. {
        let Some(tag) = fields.get(format!("item_tags.{i}.tag").as_str()) else {
            break;
        };
        assert_eq!(
            fields[format!("item_tags.{i}.operator").as_str()],
            "1",
            "equals"
        );
        tags.push((*tag, fields[format!("item_tags.{i}.value").as_str()]));
    }
    assert!(!tags.is_empty(), "{widget}: item tags");
    let or = fields.get("evaltype_item") == Some(&"2");
    let mut keys = BTreeSet::new();
    for item in rules.iter().flat_map(|r| list(r, "item_prototypes")) {
        let has = |(t, v): &(&str, &str)| {
            list(item, "tags")
                .iter()
                .any(|x| text(x, "tag") == *t && x.get("value").and_then(Value::as_str) == Some(*v))
        };
        // and/or: tags of the same name are or-ed, different names and-ed.
        let matches = if or {
            tags.iter().any(has)
        } else {
            let names: BTreeSet<&str> = tags.iter().map(|(t, _)| *t).collect();
            names
                .iter()
                .all(|n| tags.iter().filter(|(t, _)| t == n).any(has))
        };
        if matches {
            keys.insert(text(item, "key").to_string());
        }
    }
    keys
}

/// The part of Zabbix 6.0's import schema (C60XmlValidator) this template
/// uses: which tags each object may hold, which are required, and the
/// constants the enumerated ones accept.
mod schema {
    pub enum Node {
        Str,
        /// A dashboard widget field's value: a string, or the host and the
        /// name (graph) or key (item) of what it shows.
        WidgetValue,
        OneOf(&'static [&'static str]),
        List(Box<Node>),
        Obj(Vec<(&'static str, bool, Node)>),
    }
    use Node::*;

    const ITEM_TYPES: &[&str] = &[
        "ZABBIX_PASSIVE",
        "TRAP",
        "SIMPLE",
        "INTERNAL",
        "ZABBIX_ACTIVE",
        "EXTERNAL",
        "ODBC",
        "IPMI",
        "SSH",
        "TELNET",
        "CALCULATED",
        "JMX",
        "SNMP_TRAP",
        "DEPENDENT",
        "HTTP_AGENT",
        "SNMP_AGENT",
        "SCRIPT",
    ];
    const VALUE_TYPES: &[&str] = &["FLOAT", "CHAR", "LOG", "UNSIGNED", "TEXT"];
    const PRIORITIES: &[&str] = &[
        "NOT_CLASSIFIED",
        "INFO",
        "WARNING",
        "AVERAGE",
        "HIGH",
        "DISASTER",
    ];
    const STEP_TYPES: &[&str] = &[
        "MULTIPLIER",
        "RTRIM",
        "LTRIM",
        "TRIM",
        "REGEX",
        "BOOL_TO_DECIMAL",
        "OCTAL_TO_DECIMAL",
        "HEX_TO_DECIMAL",
        "SIMPLE_CHANGE",
        "CHANGE_PER_SECOND",
        "XMLPATH",
        "JSONPATH",
        "IN_RANGE",
        "MATCHES_REGEX",
        "NOT_MATCHES_REGEX",
        "CHECK_JSON_ERROR",
        "CHECK_XML_ERROR",
        "CHECK_REGEX_ERROR",
        "CHECK_NOT_SUPPORTED",
        "DISCARD_UNCHANGED",
        "DISCARD_UNCHANGED_HEARTBEAT",
        "JAVASCRIPT",
        "PROMETHEUS_PATTERN",
        "PROMETHEUS_TO_JSON",
        "CSV_TO_JSON",
        "STR_REPLACE",
        "XML_TO_JSON",
    ];
    const YES_NO: &[&str] = &["NO", "YES"];

    fn tags() -> Node {
        List(Box::new(Obj(vec![
            ("tag", true, Str),
            ("value", false, Str),
        ])))
    }
    fn steps() -> Node {
        List(Box::new(Obj(vec![
            ("type", true, OneOf(STEP_TYPES)),
            ("parameters", true, List(Box::new(Str))),
            (
                "error_handler",
                false,
                OneOf(&[
                    "ORIGINAL_ERROR",
                    "DISCARD_VALUE",
                    "CUSTOM_VALUE",
                    "CUSTOM_ERROR",
                ]),
            ),
            ("error_handler_params", false, Str),
        ])))
    }
    fn key_ref() -> Node {
        Obj(vec![("key", true, Str)])
    }
    fn triggers() -> Node {
        List(Box::new(Obj(vec![
            ("uuid", true, Str),
            ("expression", true, Str),
            (
                "recovery_mode",
                false,
                OneOf(&["EXPRESSION", "RECOVERY_EXPRESSION", "NONE"]),
            ),
            ("recovery_expression", false, Str),
            ("name", true, Str),
            ("event_name", false, Str),
            ("opdata", false, Str),
            ("url", false, Str),
            ("status", false, OneOf(&["ENABLED", "DISABLED"])),
            ("discover", false, OneOf(&["DISCOVER", "NO_DISCOVER"])),
            ("priority", false, OneOf(PRIORITIES)),
            ("description", false, Str),
            ("manual_close", false, OneOf(YES_NO)),
            (
                "dependencies",
                false,
                List(Box::new(Obj(vec![
                    ("name", true, Str),
                    ("expression", true, Str),
                    ("recovery_expression", false, Str),
                ]))),
            ),
            ("tags", false, tags()),
        ])))
    }
    fn item(prototype: bool, v70: bool) -> Node {
        let mut fields = vec![
            ("uuid", true, Str),
            ("name", true, Str),
            ("type", false, OneOf(ITEM_TYPES)),
            ("key", true, Str),
            ("delay", false, Str),
            ("history", false, Str),
            ("trends", false, Str),
            ("status", false, OneOf(&["ENABLED", "DISABLED"])),
            ("value_type", false, OneOf(VALUE_TYPES)),
            ("units", false, Str),
            ("description", false, Str),
            ("valuemap", false, Obj(vec![("name", true, Str)])),
            ("preprocessing", false, steps()),
            ("master_item", false, key_ref()),
            ("tags", false, tags()),
        ];
        if v70 {
            fields.push(("timeout", false, Str));
        }
        if prototype {
            fields.push(("discover", false, OneOf(&["DISCOVER", "NO_DISCOVER"])));
            fields.push(("trigger_prototypes", false, triggers()));
        } else {
            fields.push(("triggers", false, triggers()));
        }
        Obj(fields)
    }
    fn discovery_rule(v70: bool) -> Node {
        Obj(vec![
            ("uuid", true, Str),
            ("name", true, Str),
            ("type", false, OneOf(ITEM_TYPES)),
            ("key", true, Str),
            ("delay", false, Str),
            ("status", false, OneOf(&["ENABLED", "DISABLED"])),
            (
                "filter",
                false,
                Obj(vec![
                    (
                        "evaltype",
                        false,
                        OneOf(&["AND_OR", "AND", "OR", "FORMULA"]),
                    ),
                    ("formula", false, Str),
                    (
                        "conditions",
                        false,
                        List(Box::new(Obj(vec![
                            ("macro", true, Str),
                            ("value", false, Str),
                            (
                                "operator",
                                false,
                                OneOf(&["MATCHES_REGEX", "NOT_MATCHES_REGEX"]),
                            ),
                            ("formulaid", true, Str),
                        ]))),
                    ),
                ]),
            ),
            ("lifetime", false, Str),
            ("description", false, Str),
            ("item_prototypes", false, List(Box::new(item(true, v70)))),
            ("trigger_prototypes", false, triggers()),
            (
                "graph_prototypes",
                false,
                List(Box::new(Obj(vec![
                    ("uuid", true, Str),
                    ("name", true, Str),
                    ("width", false, Str),
                    ("height", false, Str),
                    (
                        "type",
                        false,
                        OneOf(&["NORMAL", "STACKED", "PIE", "EXPLODED"]),
                    ),
                    (
                        "graph_items",
                        true,
                        List(Box::new(Obj(vec![
                            ("sortorder", false, Str),
                            (
                                "drawtype",
                                false,
                                OneOf(&[
                                    "SINGLE_LINE",
                                    "FILLED_REGION",
                                    "BOLD_LINE",
                                    "DOTTED_LINE",
                                    "DASHED_LINE",
                                    "GRADIENT_LINE",
                                ]),
                            ),
                            ("color", false, Str),
                            ("yaxisside", false, OneOf(&["LEFT", "RIGHT"])),
                            (
                                "calc_fnc",
                                false,
                                OneOf(&["MIN", "AVG", "MAX", "ALL", "LAST"]),
                            ),
                            (
                                "item",
                                true,
                                Obj(vec![("host", true, Str), ("key", true, Str)]),
                            ),
                        ]))),
                    ),
                ]))),
            ),
            ("preprocessing", false, steps()),
            ("master_item", false, key_ref()),
            (
                "lld_macro_paths",
                false,
                List(Box::new(Obj(vec![
                    ("lld_macro", true, Str),
                    ("path", true, Str),
                ]))),
            ),
        ])
    }
    fn widget(v70: bool) -> Node {
        // 6.2 named the widget types as the frontend's modules are named.
        let types: &'static [&'static str] = if v70 {
            &[
                "clock",
                "graph",
                "graphprototype",
                "honeycomb",
                "item",
                "itemhistory",
                "url",
            ]
        } else {
            &[
                "CLOCK",
                "GRAPH_CLASSIC",
                "GRAPH_PROTOTYPE",
                "ITEM",
                "PLAIN_TEXT",
                "URL",
            ]
        };
        Obj(vec![
            ("type", true, OneOf(types)),
            ("name", false, Str),
            ("x", false, Str),
            ("y", false, Str),
            ("width", false, Str),
            ("height", false, Str),
            ("hide_header", false, OneOf(YES_NO)),
            (
                "fields",
                false,
                List(Box::new(Obj(vec![
                    (
                        "type",
                        true,
                        OneOf(&[
                            "INTEGER",
                            "STRING",
                            "HOST",
                            "ITEM",
                            "ITEM_PROTOTYPE",
                            "GRAPH",
                            "GRAPH_PROTOTYPE",
                        ]),
                    ),
                    ("name", true, Str),
                    ("value", true, WidgetValue),
                ]))),
            ),
        ])
    }
    pub fn export(v70: bool) -> Node {
        let mut template = vec![
            ("uuid", true, Str),
            ("template", true, Str),
            ("name", false, Str),
            ("description", false, Str),
            (
                "groups",
                true,
                List(Box::new(Obj(vec![("name", true, Str)]))),
            ),
            ("items", false, List(Box::new(item(false, v70)))),
            (
                "discovery_rules",
                false,
                List(Box::new(discovery_rule(v70))),
            ),
            ("tags", false, tags()),
            (
                "macros",
                false,
                List(Box::new(Obj(vec![
                    ("macro", true, Str),
                    ("type", false, OneOf(&["TEXT", "SECRET_TEXT", "VAULT"])),
                    ("value", false, Str),
                    ("description", false, Str),
                ]))),
            ),
            (
                "dashboards",
                false,
                List(Box::new(Obj(vec![
                    ("uuid", true, Str),
                    ("name", true, Str),
                    ("display_period", false, Str),
                    ("auto_start", false, OneOf(YES_NO)),
                    (
                        "pages",
                        false,
                        List(Box::new(Obj(vec![
                            ("name", false, Str),
                            ("display_period", false, Str),
                            ("widgets", false, List(Box::new(widget(v70)))),
                        ]))),
                    ),
                ]))),
            ),
            (
                "valuemaps",
                false,
                List(Box::new(Obj(vec![
                    ("uuid", true, Str),
                    ("name", true, Str),
                    (
                        "mappings",
                        true,
                        List(Box::new(Obj(vec![
                            ("type", false, Str),
                            ("value", false, Str),
                            ("newvalue", true, Str),
                        ]))),
                    ),
                ]))),
            ),
        ];
        if v70 {
            template.push((
                "vendor",
                false,
                Obj(vec![("name", true, Str), ("version", true, Str)]),
            ));
        }
        Obj(vec![
            ("version", true, Str),
            ("date", false, Str),
            (
                if v70 { "template_groups" } else { "groups" },
                false,
                List(Box::new(Obj(vec![
                    ("uuid", true, Str),
                    ("name", true, Str),
                ]))),
            ),
            ("templates", false, List(Box::new(Obj(template)))),
        ])
    }
}

fn check(node: &schema::Node, value: &Value, path: &str) {
    use schema::Node::*;
    match node {
        Str => assert!(value.is_string(), "{path}: a string is expected"),
        WidgetValue => {
            if let Some(map) = value.as_object() {
                let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
                assert!(
                    keys == ["host", "name"].into() || keys == ["host", "key"].into(),
                    "{path}: host and name (a graph) or host and key (an item) expected"
                );
                assert!(map.values().all(Value::is_string), "{path}: strings");
            } else {
                assert!(
                    value.is_string(),
                    "{path}: a string or a mapping is expected"
                );
            }
        }
        OneOf(allowed) => {
            let s = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: a string is expected"));
            assert!(
                allowed.contains(&s),
                "{path}: unexpected constant {s:?}, not one of {allowed:?}"
            );
        }
        List(inner) => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{path}: a list is expected"));
            for (i, v) in items.iter().enumerate() {
                check(inner, v, &format!("{path}[{}]", i + 1));
            }
        }
        Obj(fields) => {
            let map = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: a mapping is expected"));
            for key in map.keys() {
                assert!(
                    fields.iter().any(|(name, _, _)| name == key),
                    "{path}: unexpected tag {key:?}"
                );
            }
            for (name, required, inner) in fields {
                match map.get(*name) {
                    Some(v) => check(inner, v, &format!("{path}/{name}")),
                    None => assert!(!required, "{path}: the tag {name:?} is missing"),
                }
            }
        }
    }
}

#[test]
fn key_parser_reads_zabbix_keys() {
    assert_eq!(parse_key("a.b"), ("a.b".into(), None));
    assert_eq!(
        parse_key(r#"a[x, "y,z" ,"q\"r",]"#),
        (
            "a".into(),
            Some(vec!["x".into(), "y,z".into(), "q\"r".into(), String::new()])
        )
    );
    assert_eq!(
        expression_keys(
            &format!("min(/{TEMPLATE_NAME}/k[\"a,)\",b],5m)>1 and last(/{TEMPLATE_NAME}/v)=0"),
            TEMPLATE_NAME
        ),
        [r#"k["a,)",b]"#.to_string(), "v".into()].into()
    );
    assert_eq!(user_macro_names(r#"x {$A} {$B:"c"}"#), ["{$A}", "{$B}"]);
}

/// The header of each generated file.
const GENERATED_HEADER: &str = "Generated from packaging/template/source.yaml by `make template`\n(UPDATE_TEMPLATE=1 cargo test --test template): edit the source, not this file.";

/// One source: both packaged files are what the generator makes of
/// `source.yaml` now, and read back as exactly what it generated.
#[test]
fn the_template_files_are_generated_from_the_source() {
    let source = std::fs::read_to_string(SOURCE_PATH).unwrap();
    let source = YamlLoader::load_from_str(&source).expect("the source is valid YAML");
    let update = std::env::var("UPDATE_TEMPLATE").is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    let mut docs = Vec::new();
    for (version, path) in [
        (generate::Version::V60, TEMPLATE_PATH),
        (generate::Version::V70, TEMPLATE_70_PATH),
    ] {
        let doc = generate::generate(&source[0], version);
        docs.push(doc.clone());
        let text = generate::emit(&doc, GENERATED_HEADER);
        let back = YamlLoader::load_from_str(&text).unwrap();
        assert_eq!(
            back[0], doc,
            "{path}: the emitted YAML reads back as generated"
        );
        if update {
            std::fs::write(path, &text).unwrap();
        } else if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
            drifted.push(path);
        }
    }
    // The README's tables, between its markers.
    let readme = std::fs::read_to_string(README_PATH).unwrap();
    let begin = readme
        .find(generate::README_BEGIN)
        .expect("the README's begin marker");
    let end = readme
        .find(generate::README_END)
        .expect("the README's end marker")
        + generate::README_END.len()
        + 1;
    let tables = generate::readme_tables(&docs[1], &docs[0], ACTIVE_TEMPLATE_NAME);
    let fresh = format!("{}{tables}{}", &readme[..begin], &readme[end..]);
    if update {
        std::fs::write(README_PATH, &fresh).unwrap();
    } else if fresh != readme {
        drifted.push(README_PATH);
    }
    assert!(
        drifted.is_empty(),
        "{drifted:?} drifted from packaging/template/source.yaml: run `make template` (and commit the result), never edit them by hand"
    );
}

/// Texts read as written: no line of a name, description or event name
/// begins or ends with blanks (an indentation slip in the source's block
/// texts would show in the frontend).
#[test]
fn no_text_line_begins_or_ends_with_blanks() {
    fn walk(value: &Value, path: &str, wrong: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let here = format!("{path}/{k}");
                    match (k.as_str(), v) {
                        ("name" | "description" | "event_name" | "opdata", Value::String(s)) => {
                            for line in s.lines() {
                                if line != line.trim() {
                                    wrong.push(format!("{here}: {line:?}"));
                                }
                            }
                        }
                        _ => walk(v, &here, wrong),
                    }
                }
            }
            Value::Array(values) => {
                for (i, v) in values.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), wrong);
                }
            }
            _ => {}
        }
    }
    for (version, export) in exports() {
        let mut wrong = Vec::new();
        walk(&export, version, &mut wrong);
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
