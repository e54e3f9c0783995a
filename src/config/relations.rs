//! A node's `relations`: names, or tables with the credentials they
//! override; unique, non-empty and printable.

use super::credentials::RawAuth;
use super::Span;
use crate::error::quoted;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

/// An entry of `relations`: a name, or a table with the name and the
/// authentication keys it overrides.
pub(super) struct RawRelation {
    name: Spanned<String>,
    auth: Option<RawAuth>,
}

impl<'de> Deserialize<'de> for RawRelation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        /// A relation's table: its name and authentication keys.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: Spanned<String>,
            token_file: Option<PathBuf>,
            jwt_secret_file: Option<PathBuf>,
            jwt_issuer: Option<Spanned<String>>,
            jwt_user: Option<Spanned<String>>,
            jwt_ttl: Option<Spanned<u64>>,
            jwt_exp_unit: Option<Spanned<String>>,
            auth_header: Option<Spanned<String>>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRelation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a relation name, or a table { name = \"...\", jwt_secret_file = \"...\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<RawRelation, E> {
                Ok(RawRelation {
                    name: Spanned::new(0..0, v.to_string()),
                    auth: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawRelation, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(RawRelation {
                    name: t.name,
                    auth: Some(RawAuth {
                        token_file: t.token_file,
                        jwt_secret_file: t.jwt_secret_file,
                        jwt_issuer: t.jwt_issuer,
                        jwt_user: t.jwt_user,
                        jwt_ttl: t.jwt_ttl,
                        jwt_exp_unit: t.jwt_exp_unit,
                        auth_header: t.auth_header,
                    }),
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The relations written as tables: name -> (the table's span, its keys).
pub(super) type OwnAuth = BTreeMap<String, (Span, RawAuth)>;

/// Relation names become discovery rows and item keys: each must be
/// unique within its node (Zabbix rejects an LLD with duplicate rows),
/// non-empty and free of control characters. An error gives the name's span.
/// Also returns the relations that bring their own authentication.
pub(super) fn validate_relations(
    relations: Vec<Spanned<RawRelation>>,
) -> std::result::Result<(Vec<String>, OwnAuth), (Span, String)> {
    let mut names: Vec<String> = Vec::with_capacity(relations.len());
    let mut own = BTreeMap::new();
    // A set for the duplicate check: linear in the number of relations.
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(relations.len());
    for relation in relations {
        let entry_span = relation.span();
        let relation = relation.into_inner();
        let span = match relation.auth {
            Some(_) => relation.name.span(),
            None => entry_span.clone(),
        };
        let name = relation.name.into_inner();
        if name.is_empty() {
            return Err((span, "relations: a relation name is empty".into()));
        }
        if name.chars().any(char::is_control) {
            return Err((
                span,
                format!(
                    "relations: {} holds a control character",
                    quoted(&name.escape_default().to_string())
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err((
                span,
                format!("relations: {} is listed twice", quoted(&name)),
            ));
        }
        if let Some(auth) = relation.auth {
            own.insert(name.clone(), (entry_span, auth));
        }
        names.push(name);
    }
    Ok((names, own))
}
