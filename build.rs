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
        .with_src(capi_for_cbindgen(&crate_dir, &out_dir))
        .with_config(config)
        .with_after_include(version_macros)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(format!("{out_dir}/exalate_zabbix.h"));
}

/// cbindgen does not expand macros, and every export of src/capi.rs is
/// defined by `ffi_fn!` and the result codes by `result_codes!`: writes the
/// file with those written out as the items they define (bodies left out)
/// and returns its path.
fn capi_for_cbindgen(crate_dir: &str, out_dir: &str) -> String {
    let source = std::fs::read_to_string(format!("{crate_dir}/src/capi.rs")).expect("src/capi.rs");
    let file = syn::parse_file(&source).expect("src/capi.rs parses");
    let mut items = Vec::new();
    for item in file.items {
        match item {
            syn::Item::Macro(m) if m.mac.path.is_ident("ffi_fn") => {
                let mut f: syn::ItemFn = m.mac.parse_body().expect("ffi_fn! holds a function");
                if !matches!(f.vis, syn::Visibility::Public(_)) {
                    continue; // not exported by name
                }
                f.sig.abi = Some(syn::parse_quote!(extern "C"));
                f.attrs.push(syn::parse_quote!(#[no_mangle]));
                if let syn::ReturnType::Type(_, ty) = &f.sig.output {
                    if matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty()) {
                        f.sig.output = syn::ReturnType::Default;
                    }
                }
                f.block = Box::new(syn::parse_quote!({}));
                items.push(syn::Item::Fn(f));
            }
            syn::Item::Macro(m) if m.mac.path.is_ident("result_codes") => {
                let mut codes: syn::ItemEnum =
                    m.mac.parse_body().expect("result_codes! holds the enum");
                for code in &mut codes.variants {
                    code.attrs.retain(|a| !a.path().is_ident("kind"));
                }
                codes.attrs.push(syn::parse_quote!(#[repr(C)]));
                items.push(syn::Item::Enum(codes));
            }
            // macro_rules!, thread_local!: nothing for C.
            syn::Item::Macro(_) => {}
            other => items.push(other),
        }
    }
    let path = format!("{out_dir}/capi_for_cbindgen.rs");
    std::fs::write(&path, quote::quote!(#(#items)*).to_string()).expect("write OUT_DIR");
    path
}
