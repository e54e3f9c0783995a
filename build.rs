//! Generates the C API header into OUT_DIR (`make header` copies it to
//! include/, where it is committed; a test checks the two are equal), and
//! gives the cdylib its SONAME.

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets it");
    println!("cargo:rerun-if-changed=src/capi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libexalate_zabbix.so.0");

    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    let number = |name: &str| std::env::var(name).expect("cargo sets it");
    let version_macros = format!(
        "\n#define EXALATE_ZABBIX_VERSION \"{version}\"\n#define EXALATE_ZABBIX_VERSION_MAJOR {}\n#define EXALATE_ZABBIX_VERSION_MINOR {}\n#define EXALATE_ZABBIX_VERSION_PATCH {}\n",
        number("CARGO_PKG_VERSION_MAJOR"),
        number("CARGO_PKG_VERSION_MINOR"),
        number("CARGO_PKG_VERSION_PATCH"),
    );
    let config =
        cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(version_macros)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(format!("{out_dir}/exalate_zabbix.h"));
}
