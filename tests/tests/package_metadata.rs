//! Every crate the workspace publishes carries what crates.io and docs.rs show: a description,
//! a README, keywords, categories, docs.rs documentation, the license and both license texts,
//! a CHANGELOG, and no placeholder repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crates.io categories the workspace's crates use (a subset of crates.io's list).
const CATEGORIES: &[&str] = &[
    "asynchronous",
    "concurrency",
    "development-tools::testing",
    "os",
];

fn workspace_packages() -> Vec<Value> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    metadata["packages"].as_array().expect("packages").clone()
}

fn publishable(package: &Value) -> bool {
    // `publish = false` is an empty list of registries; unset is `null`.
    !matches!(package["publish"].as_array(), Some(registries) if registries.is_empty())
}

fn text(package: &Value, field: &str) -> String {
    package[field].as_str().unwrap_or_default().to_owned()
}

fn list(package: &Value, field: &str) -> Vec<String> {
    package[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_publishable_crate_has_its_package_metadata_and_files() {
    let packages: Vec<Value> = workspace_packages()
        .into_iter()
        .filter(publishable)
        .collect();
    assert_eq!(packages.len(), 9, "the facade and its eight parts");
    for package in &packages {
        let name = text(package, "name");
        let dir = PathBuf::from(text(package, "manifest_path"))
            .parent()
            .expect("a crate dir")
            .to_owned();
        assert!(
            text(package, "description").len() > 20,
            "{name}: a description"
        );
        assert_eq!(
            text(package, "license"),
            "MIT OR Apache-2.0",
            "{name}: the license"
        );
        assert_eq!(
            text(package, "documentation"),
            format!("https://docs.rs/{name}"),
            "{name}: documentation"
        );
        assert!(
            package["repository"].is_null()
                || !text(package, "repository").contains("example.invalid"),
            "{name}: a real repository or none"
        );
        assert_eq!(text(package, "readme"), "README.md", "{name}: a README");
        let keywords = list(package, "keywords");
        assert!(
            (1..=5).contains(&keywords.len())
                && keywords
                    .iter()
                    .all(|k| k.len() <= 20
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
            "{name}: one to five keywords crates.io takes: {keywords:?}"
        );
        let categories = list(package, "categories");
        assert!(
            !categories.is_empty() && categories.iter().all(|c| CATEGORIES.contains(&c.as_str())),
            "{name}: categories crates.io knows: {categories:?}"
        );
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|err| panic!("{name}: {file}: {err}"))
        };
        assert!(
            read("README.md").starts_with(&format!("# {name}\n")),
            "{name}: its README names it"
        );
        assert!(
            read("CHANGELOG.md").contains("## 0.1.0"),
            "{name}: a CHANGELOG entry for this version"
        );
        assert!(
            read("LICENSE-MIT").contains("Permission is hereby granted"),
            "{name}: the MIT text"
        );
        let apache = read("LICENSE-APACHE");
        assert!(
            apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"),
            "{name}: the Apache-2.0 text"
        );
    }
}
