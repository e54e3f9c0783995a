// Included by src/boundary.rs; compiled alone by a test with both panic
// strategies, to show that panic = "abort" cannot build the library.
#[cfg(panic = "abort")]
compile_error!(
    "libexalate_zabbix needs panic = \"unwind\": its C boundary catches panics, which \"abort\" would turn into a dead Zabbix agent"
);
