//! The one source of the templates: `packaging/template/source.yaml`
//! describes the passive template once, in Zabbix 7.0's export format; this
//! module generates from it the two packaged files, each holding the passive
//! and the active template:
//!
//! - `template_exalate_zabbix_7.0.yaml`: the source as it is, and the active
//!   variant (every agent item `ZABBIX_ACTIVE`, its own name and
//!   description, its own uuids: `x-active`);
//! - `template_exalate_zabbix.yaml` (6.0): the same without what 6.0 does
//!   not know: `timeout`, `vendor`, 7.0-only objects (`x-since: '7.0'`),
//!   `template_groups` named `groups`, dashboard widgets in 6.0's form (6.0
//!   type names, fields without the `.0` index and the `reference`), the rows
//!   that only 7.0 widgets filled removed.
//!
//! Markers in the source (never in the output): `x-since: '7.0'` on any
//! mapping: 7.0 only; `x-variant: active` (or `passive`): in that template
//! only; `x-active`: the active template's `template`, `name`,
//! `description` and the uuids it has kept from earlier releases
//! (`uuids: {passive uuid: active uuid}`); an object added later gets an
//! active uuid derived from its own (`active_uuid`), so a new item needs one
//! uuid, written once.
//!
//! `UPDATE_TEMPLATE=1 cargo test --test template` (`make template`) writes
//! the files and the tables of the README; without it the test fails when
//! they differ from what the source gives.

use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

pub const TEMPLATE: &str = "Exalate by Zabbix agent";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Version {
    V60,
    V70,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V60 => "6.0",
            Version::V70 => "7.0",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Passive,
    Active,
}

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_string())
}

fn get<'a>(hash: &'a Hash, key: &str) -> Option<&'a Yaml> {
    hash.get(&s(key))
}

fn str_of<'a>(hash: &'a Hash, key: &str) -> Option<&'a str> {
    get(hash, key).and_then(Yaml::as_str)
}

/// The active template's uuid for an object the source gives `uuid`: one kept
/// from an earlier release, else derived (FNV-1a, made a UUIDv4).
pub fn active_uuid(uuid: &str) -> String {
    let fnv = |seed: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes().chain(uuid.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let mut hex: Vec<u8> = format!(
        "{:016x}{:016x}",
        fnv("exalate-zabbix active "),
        fnv("active template ")
    )
    .into_bytes();
    hex[12] = b'4';
    hex[16] = b"89ab"[usize::from(hex[17] % 4)];
    String::from_utf8(hex).unwrap()
}

struct Context<'a> {
    version: Version,
    variant: Variant,
    /// The active template's name, and its kept uuids.
    active_name: &'a str,
    kept_uuids: Option<&'a Hash>,
}

impl Context<'_> {
    fn keep(&self, hash: &Hash) -> bool {
        if self.version == Version::V60 && str_of(hash, "x-since") == Some("7.0") {
            return false;
        }
        match str_of(hash, "x-variant") {
            Some("active") => self.variant == Variant::Active,
            Some("passive") => self.variant == Variant::Passive,
            Some(other) => panic!("x-variant: {other}?"),
            None => true,
        }
    }

    fn string(&self, text: &str) -> String {
        if self.variant == Variant::Passive {
            return text.to_string();
        }
        if text == TEMPLATE {
            return self.active_name.to_string();
        }
        // Trigger expressions name the template: /Template/key.
        text.replace(&format!("/{TEMPLATE}/"), &format!("/{}/", self.active_name))
    }

    fn uuid(&self, uuid: &str) -> String {
        if self.variant == Variant::Passive {
            return uuid.to_string();
        }
        self.kept_uuids
            .and_then(|kept| str_of(kept, uuid))
            .map_or_else(|| active_uuid(uuid), str::to_string)
    }

    /// `value` as this template and version hold it; None: not at all.
    fn value(&self, value: &Yaml, parent_key: &str) -> Option<Yaml> {
        match value {
            Yaml::String(text) => Some(Yaml::String(self.string(text))),
            Yaml::Array(values) => Some(Yaml::Array(
                values
                    .iter()
                    .filter_map(|v| self.value(v, parent_key))
                    .collect(),
            )),
            Yaml::Hash(hash) => {
                if !self.keep(hash) {
                    return None;
                }
                let is_item = matches!(parent_key, "items" | "item_prototypes");
                // The active variant: agent items become active checks (the
                // type follows the name, as Zabbix exports it).
                let make_active = is_item
                    && self.variant == Variant::Active
                    && str_of(hash, "type").is_none_or(|t| t == "ZABBIX_PASSIVE");
                let mut out = Hash::new();
                for (k, v) in hash {
                    let key = k.as_str().expect("string keys");
                    if key.starts_with("x-") || (make_active && key == "type") {
                        continue;
                    }
                    if self.version == Version::V60 && matches!(key, "timeout" | "vendor") {
                        continue;
                    }
                    let v = if key == "uuid" {
                        s(&self.uuid(v.as_str().expect("uuid")))
                    } else {
                        let Some(v) = self.value(v, key) else {
                            continue;
                        };
                        v
                    };
                    out.insert(k.clone(), v);
                    if key == "name" && make_active {
                        out.insert(s("type"), s("ZABBIX_ACTIVE"));
                    }
                }
                if self.version == Version::V60 && parent_key == "widgets" {
                    out = widget_60(out);
                }
                if self.version == Version::V60 && parent_key == "pages" {
                    compact_rows(&mut out);
                }
                Some(Yaml::Hash(out))
            }
            other => panic!("the source holds a non-string value {other:?}: quote it"),
        }
    }
}

/// A 7.0 widget in 6.0's form.
fn widget_60(widget: Hash) -> Hash {
    let mut out = Hash::new();
    for (k, v) in widget {
        match k.as_str().unwrap() {
            "type" => {
                let t = v.as_str().unwrap();
                let old = match t {
                    "graphprototype" => "GRAPH_PROTOTYPE",
                    "graph" => "GRAPH_CLASSIC",
                    "item" => "ITEM",
                    "clock" => "CLOCK",
                    "plaintext" => "PLAIN_TEXT",
                    "url" => "URL",
                    other => panic!("widget type {other} has no 6.0 form: mark it x-since: '7.0'"),
                };
                out.insert(k, s(old));
            }
            "fields" => {
                let fields = v
                    .as_vec()
                    .unwrap()
                    .iter()
                    .filter_map(|f| {
                        let f = f.as_hash().unwrap();
                        let name = str_of(f, "name").unwrap();
                        if name == "reference" {
                            return None;
                        }
                        let mut f = f.clone();
                        if let Some(base) = name.strip_suffix(".0") {
                            *f.get_mut(&s("name")).unwrap() = s(base);
                        }
                        assert!(
                            !str_of(&f, "name").unwrap().contains('.'),
                            "widget field {name} has no 6.0 form"
                        );
                        Some(Yaml::Hash(f))
                    })
                    .collect();
                out.insert(k, Yaml::Array(fields));
            }
            // 6.4 made the grid three times as fine: 72 columns, 6.0 has 24.
            "x" | "width" => {
                let n: u32 = v.as_str().unwrap().parse().unwrap();
                assert!(
                    n % 3 == 0,
                    "widget {k:?} {n}: not on 6.0's grid of 24 columns"
                );
                out.insert(k, s(&(n / 3).to_string()));
            }
            _ => {
                out.insert(k, v);
            }
        }
    }
    out
}

/// The rows of a dashboard page no widget covers any more (7.0-only
/// widgets removed) are taken out: the widgets below move up.
fn compact_rows(page: &mut Hash) {
    let Some(Yaml::Array(widgets)) = page.get_mut(&s("widgets")) else {
        return;
    };
    let number = |w: &Hash, key: &str, default: u32| {
        str_of(w, key).map_or(default, |v| v.parse::<u32>().unwrap())
    };
    let mut covered = std::collections::BTreeSet::new();
    for w in widgets.iter() {
        let w = w.as_hash().unwrap();
        let y = number(w, "y", 0);
        covered.extend(y..y + number(w, "height", 2));
    }
    for w in widgets.iter_mut() {
        let Yaml::Hash(w) = w else { unreachable!() };
        let y = number(w, "y", 0);
        let new_y = (0..y).filter(|row| covered.contains(row)).count();
        // A widget keeps its place among the keys; y 0 is left out, as Zabbix does.
        let mut out = Hash::new();
        let mut placed = false;
        for (k, v) in w.iter() {
            if k.as_str() == Some("y") {
                if new_y > 0 {
                    out.insert(k.clone(), s(&new_y.to_string()));
                }
                placed = true;
            } else {
                if !placed && new_y > 0 && matches!(k.as_str(), Some("width" | "height")) {
                    out.insert(s("y"), s(&new_y.to_string()));
                    placed = true;
                }
                out.insert(k.clone(), v.clone());
            }
        }
        *w = out;
    }
}

/// The export of `version` generated from the source document.
pub fn generate(source: &Yaml, version: Version) -> Yaml {
    let root = source.as_hash().expect("a mapping");
    let zx = get(root, "zabbix_export")
        .and_then(Yaml::as_hash)
        .expect("zabbix_export");
    assert_eq!(
        str_of(zx, "version"),
        Some("7.0"),
        "the source is a 7.0 export"
    );
    let mut out = Hash::new();
    for (k, v) in zx {
        match k.as_str().unwrap() {
            "version" => {
                out.insert(k.clone(), s(version.as_str()));
            }
            "template_groups" => {
                let name = if version == Version::V60 {
                    "groups"
                } else {
                    "template_groups"
                };
                out.insert(s(name), v.clone());
            }
            "templates" => {
                let source_templates = v.as_vec().unwrap();
                assert_eq!(
                    source_templates.len(),
                    1,
                    "the source describes one template"
                );
                let template = source_templates[0].as_hash().unwrap();
                assert_eq!(str_of(template, "template"), Some(TEMPLATE));
                let active = get(template, "x-active")
                    .and_then(Yaml::as_hash)
                    .expect("x-active");
                let mut templates = Vec::new();
                for variant in [Variant::Passive, Variant::Active] {
                    let cx = Context {
                        version,
                        variant,
                        active_name: str_of(active, "template").unwrap(),
                        kept_uuids: get(active, "uuids").and_then(Yaml::as_hash),
                    };
                    let Some(Yaml::Hash(mut t)) = cx.value(&source_templates[0], "templates")
                    else {
                        unreachable!()
                    };
                    if variant == Variant::Active {
                        // In place: the keys keep their order.
                        for (k, v) in t.iter_mut() {
                            let field = k.as_str().unwrap();
                            if matches!(field, "template" | "name" | "description") {
                                *v = get(active, field)
                                    .unwrap_or_else(|| panic!("x-active: {field}"))
                                    .clone();
                            }
                        }
                    }
                    templates.push(Yaml::Hash(t));
                }
                out.insert(k.clone(), Yaml::Array(templates));
            }
            other => panic!("the source's zabbix_export holds {other}?"),
        }
    }
    let mut doc = Hash::new();
    doc.insert(s("zabbix_export"), Yaml::Hash(out));
    Yaml::Hash(doc)
}

/// YAML text as Zabbix writes its exports: two-space indents, lists indented
/// under their key, multi-line text as literal blocks, single quotes only
/// where a plain scalar would be read as something else (YAML 1.1, as PHP's
/// parser reads it: 'YES', '0', 'y').
pub fn emit(doc: &Yaml, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    emit_hash(&mut out, doc.as_hash().unwrap(), 0, false);
    out
}

fn emit_hash(out: &mut String, hash: &Hash, indent: usize, first_inline: bool) {
    for (i, (k, v)) in hash.iter().enumerate() {
        if !(first_inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(k.as_str().unwrap(), indent));
        out.push(':');
        emit_child(out, v, indent);
    }
}

fn emit_child(out: &mut String, v: &Yaml, indent: usize) {
    match v {
        Yaml::Hash(h) if !h.is_empty() => {
            out.push('\n');
            emit_hash(out, h, indent + 2, false);
        }
        Yaml::Array(a) if !a.is_empty() => {
            out.push('\n');
            for item in a {
                out.push_str(&" ".repeat(indent + 2));
                out.push_str("- ");
                match item {
                    Yaml::Hash(h) => emit_hash(out, h, indent + 4, true),
                    Yaml::String(text) => {
                        out.push_str(&scalar(text, indent + 4));
                        out.push('\n');
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        Yaml::Hash(_) => out.push_str(" {}\n"),
        Yaml::Array(_) => out.push_str(" []\n"),
        Yaml::String(text) => {
            out.push(' ');
            out.push_str(&scalar(text, indent + 2));
            out.push('\n');
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn scalar(text: &str, indent: usize) -> String {
    if text.contains('\n') {
        let body = text.trim_end_matches('\n');
        let chomp = match text.len() - body.len() {
            0 => "-",
            1 => "",
            _ => "+",
        };
        assert!(
            !body.starts_with(' ') && !body.contains('\r'),
            "a multi-line text starting with a space: {text:?}"
        );
        let mut block = format!("|{chomp}");
        for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
            block.push('\n');
            if !line.is_empty() {
                block.push_str(&" ".repeat(indent));
                block.push_str(line);
            }
        }
        return block;
    }
    let plain_chars = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/$-".contains(c))
        && !text.starts_with('-');
    // YAML 1.1 reads these as booleans, nulls or numbers.
    let special = matches!(
        text.to_ascii_lowercase().as_str(),
        "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null"
    ) || (text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-._eExXoObB".contains(c)))
        || text.starts_with('.');
    if plain_chars && !special {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// The README's generated part starts after this line and ends before `README_END`.
pub const README_BEGIN: &str =
    "<!-- Generated by `make template` from source.yaml, down to the end marker: edit the source, not these tables. -->";
pub const README_END: &str = "<!-- End of the generated tables. -->";

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A description as Zabbix's READMEs write it: paragraphs in `<p>`.
fn paragraphs(text: Option<&str>) -> String {
    let Some(text) = text else {
        return String::new();
    };
    text.trim_end()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| format!("<p>{}</p>", cell(l)))
        .collect()
}

fn type_name(item: &Hash) -> &'static str {
    match str_of(item, "type").unwrap_or("ZABBIX_PASSIVE") {
        "ZABBIX_PASSIVE" => "Zabbix agent",
        "ZABBIX_ACTIVE" => "Zabbix agent (active)",
        "DEPENDENT" => "Dependent item",
        "INTERNAL" => "Zabbix internal",
        other => panic!("item type {other}: name it for the README"),
    }
}

fn hashes<'a>(hash: &'a Hash, key: &str) -> Vec<&'a Hash> {
    get(hash, key)
        .and_then(Yaml::as_vec)
        .map(|v| v.iter().map(|h| h.as_hash().unwrap()).collect())
        .unwrap_or_default()
}

/// Key, preprocessing and (7.0) timeout of an item, as the READMEs show them.
fn key_info(item: &Hash) -> String {
    let mut out = cell(str_of(item, "key").unwrap());
    let steps = hashes(item, "preprocessing");
    if !steps.is_empty() {
        out.push_str("<p>**Preprocessing**</p><ul>");
        for step in steps {
            let params: Vec<&str> = get(step, "parameters")
                .and_then(Yaml::as_vec)
                .map(|p| p.iter().filter_map(Yaml::as_str).collect())
                .unwrap_or_default();
            let (name, shown) = match str_of(step, "type").unwrap() {
                "JSONPATH" => ("JSON Path", params.join(" ")),
                "DISCARD_UNCHANGED_HEARTBEAT" => {
                    ("Discard unchanged with heartbeat", params.join(" "))
                }
                "JAVASCRIPT" => (
                    "JavaScript",
                    "The text is too long. Please see the template.".into(),
                ),
                other => panic!("preprocessing {other}: name it for the README"),
            };
            out.push_str(&format!("<li><p>{name}: `{}`</p></li>", cell(&shown)));
        }
        out.push_str("</ul>");
    }
    if let Some(timeout) = str_of(item, "timeout") {
        out.push_str(&format!("<p>**Timeout** (7.0): `{}`</p>", cell(timeout)));
    }
    out
}

fn severity(trigger: &Hash) -> &'static str {
    match str_of(trigger, "priority").unwrap_or("NOT_CLASSIFIED") {
        "INFO" => "Info",
        "WARNING" => "Warning",
        "AVERAGE" => "Average",
        "HIGH" => "High",
        "DISASTER" => "Disaster",
        _ => "Not classified",
    }
}

fn items_table(out: &mut String, items: &[&Hash], since_70: &dyn Fn(&Hash) -> bool) {
    out.push_str("|Name|Description|Type|Key and additional info|\n|----|-----------|----|-----------------------|\n");
    for item in items {
        let mut description = paragraphs(str_of(item, "description"));
        if since_70(item) {
            description.push_str("<p>Zabbix 7.0 and later.</p>");
        }
        out.push_str(&format!(
            "|{}|{}|{}|{}|\n",
            cell(str_of(item, "name").unwrap()),
            description,
            type_name(item),
            key_info(item)
        ));
    }
}

fn triggers_table(out: &mut String, triggers: &[&Hash]) {
    out.push_str("|Name|Description|Expression|Severity|Dependencies and additional info|\n|----|-----------|----------|--------|--------------------------------|\n");
    for trigger in triggers {
        let mut info = String::new();
        if str_of(trigger, "manual_close") == Some("YES") {
            info.push_str("**Manual close**: Yes");
        }
        let dependencies = hashes(trigger, "dependencies");
        if !dependencies.is_empty() {
            if !info.is_empty() {
                info.push_str("<br>");
            }
            info.push_str("**Depends on**:<br><ul>");
            for d in dependencies {
                info.push_str(&format!("<li>{}</li>", cell(str_of(d, "name").unwrap())));
            }
            info.push_str("</ul>");
        }
        out.push_str(&format!(
            "|{}|{}|`{}`|{}|{}|\n",
            cell(str_of(trigger, "name").unwrap()),
            paragraphs(str_of(trigger, "description")),
            cell(str_of(trigger, "expression").unwrap()),
            severity(trigger),
            info
        ));
    }
}

fn triggers_of<'a>(items: &[&'a Hash], field: &str) -> Vec<&'a Hash> {
    items.iter().flat_map(|i| hashes(i, field)).collect()
}

fn template_of<'a>(doc: &'a Yaml, name: &str) -> &'a Hash {
    let zx = get(doc.as_hash().unwrap(), "zabbix_export")
        .unwrap()
        .as_hash()
        .unwrap();
    hashes(zx, "templates")
        .into_iter()
        .find(|t| str_of(t, "template") == Some(name))
        .unwrap_or_else(|| panic!("no template {name}"))
}

/// The tables of the README (macros, items, triggers, discovery rules and
/// their prototypes) from the 7.0 file; what the 6.0 file lacks is marked
/// "Zabbix 7.0 and later". The active template: what differs.
pub fn readme_tables(doc70: &Yaml, doc60: &Yaml, active_name: &str) -> String {
    let passive = template_of(doc70, TEMPLATE);
    let keys_60: std::collections::BTreeSet<String> = {
        let t = template_of(doc60, TEMPLATE);
        let mut keys: Vec<&Hash> = hashes(t, "items");
        for rule in hashes(t, "discovery_rules") {
            keys.extend(hashes(rule, "item_prototypes"));
        }
        keys.iter()
            .map(|i| str_of(i, "key").unwrap().to_string())
            .collect()
    };
    let macros_60: std::collections::BTreeSet<String> =
        hashes(template_of(doc60, TEMPLATE), "macros")
            .iter()
            .map(|m| str_of(m, "macro").unwrap().to_string())
            .collect();
    let since_70 = |item: &Hash| !keys_60.contains(str_of(item, "key").unwrap());
    let mut out = String::new();
    out.push_str(&format!("{README_BEGIN}\n\n### Macros used\n\n|Name|Description|Default|\n|----|-----------|-------|\n"));
    let macro_row = |out: &mut String, m: &Hash, v70: bool| {
        let mut description = paragraphs(str_of(m, "description"));
        if v70 {
            description.push_str("<p>Zabbix 7.0 and later.</p>");
        }
        out.push_str(&format!(
            "|{}|{}|`{}`|\n",
            cell(str_of(m, "macro").unwrap()),
            description,
            cell(str_of(m, "value").unwrap_or(""))
        ));
    };
    for m in hashes(passive, "macros") {
        macro_row(
            &mut out,
            m,
            !macros_60.contains(str_of(m, "macro").unwrap()),
        );
    }
    let items = hashes(passive, "items");
    out.push_str("\n### Items\n\n");
    items_table(&mut out, &items, &since_70);
    out.push_str("\n### Triggers\n\n");
    triggers_table(&mut out, &triggers_of(&items, "triggers"));
    for rule in hashes(passive, "discovery_rules") {
        let name = str_of(rule, "name").unwrap();
        out.push_str(&format!("\n### LLD rule {name}\n\n"));
        out.push_str("|Name|Description|Type|Key and additional info|\n|----|-----------|----|-----------------------|\n");
        out.push_str(&format!(
            "|{}|{}|{}|{}|\n",
            cell(name),
            paragraphs(str_of(rule, "description")),
            type_name(rule),
            key_info(rule)
        ));
        let prototypes = hashes(rule, "item_prototypes");
        out.push_str(&format!("\n### Item prototypes for {name}\n\n"));
        items_table(&mut out, &prototypes, &since_70);
        out.push_str(&format!("\n### Trigger prototypes for {name}\n\n"));
        triggers_table(&mut out, &triggers_of(&prototypes, "trigger_prototypes"));
    }
    // The active template: its own items, triggers and macros only.
    let active = template_of(doc70, active_name);
    let passive_keys: std::collections::BTreeSet<&str> =
        items.iter().map(|i| str_of(i, "key").unwrap()).collect();
    let passive_macros: std::collections::BTreeSet<&str> = hashes(passive, "macros")
        .iter()
        .map(|m| str_of(m, "macro").unwrap())
        .collect();
    let own: Vec<&Hash> = hashes(active, "items")
        .into_iter()
        .filter(|i| !passive_keys.contains(str_of(i, "key").unwrap()))
        .collect();
    let own_macros: Vec<&Hash> = hashes(active, "macros")
        .into_iter()
        .filter(|m| !passive_macros.contains(str_of(m, "macro").unwrap()))
        .collect();
    out.push_str(&format!(
        "\n# {active_name}\n\nThe same macros, items, triggers, discovery rules, graphs and dashboard as **{TEMPLATE}**, every Zabbix agent item as Zabbix agent (active)"
    ));
    if own.is_empty() && own_macros.is_empty() {
        out.push_str(".\n");
    } else {
        out.push_str("; in addition:\n\n### Macros used\n\n|Name|Description|Default|\n|----|-----------|-------|\n");
        for m in own_macros {
            macro_row(&mut out, m, true);
        }
        out.push_str("\n### Items\n\n");
        items_table(&mut out, &own, &|_| true);
        out.push_str("\n### Triggers\n\n");
        triggers_table(&mut out, &triggers_of(&own, "triggers"));
    }
    out.push_str(&format!("\n{README_END}\n"));
    out
}
