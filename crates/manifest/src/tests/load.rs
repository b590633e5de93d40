//! Reading a manifest from disk and checking its component files.

use std::fs;

use super::*;

#[test]
fn reports_a_missing_manifest_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stratus.toml");
    let err = Manifest::load(&path).unwrap_err();
    assert!(matches!(err, ManifestError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no such manifest file; create a stratus.toml with an [app] table and a [[function]] table",
            path.display()
        )
    );
}

#[test]
fn resolves_components_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("stratus.toml");
    fs::write(&manifest, FULL).unwrap();

    // A directory means its stratus.toml.
    let loaded = Manifest::load(dir.path()).unwrap();
    assert_eq!(loaded.dir, dir.path());
    assert_eq!(loaded.path, manifest);
    let pricing = &loaded.manifest.functions[0];
    let pricing_path = dir.path().join("target/wasm32-wasip2/release/pricing.wasm");
    assert_eq!(loaded.component_path(pricing), pricing_path);

    let err = loaded.check_components_exist().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: function \"pricing\": the `component` file {} does not exist; build it first with the function's `build` command: cargo build --release --target wasm32-wasip2",
            manifest.display(),
            pricing_path.display()
        )
    );

    fs::create_dir_all(pricing_path.parent().unwrap()).unwrap();
    fs::write(&pricing_path, b"\0asm").unwrap();
    let err = loaded.check_components_exist().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: function \"catch-all\": the `component` file {} does not exist; build the component, or fix the path (it is relative to the manifest's directory)",
            manifest.display(),
            dir.path().join("all.wasm").display()
        )
    );

    fs::write(dir.path().join("all.wasm"), b"\0asm").unwrap();
    loaded.check_components_exist().unwrap();
}

#[test]
fn names_the_file_in_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("stratus.toml");
    fs::write(&manifest, "[app]\nname = \"Shop\"\n").unwrap();
    let err = Manifest::load(&manifest).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:8: app name", manifest.display())),
        "{err}"
    );
}
