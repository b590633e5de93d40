//! `stratus new rust|python|js NAME`: a new function directory, ready for
//! `stratus up`, made from the templates in the repository's `templates/`
//! (compiled into the binary, so it works anywhere, offline).
//!
//! Each template is a minimal HTTP function built by its language's own
//! toolchain, unchanged: cargo for `wasm32-wasip2` with the `wasip2` crate,
//! componentize-py, or jco with componentize-js. The Python and JavaScript
//! ones also get the WIT they build against: the standard WASI 0.2 files
//! (`templates/wit/wasi`) and the key-value and config interfaces the node
//! offers (`wit/deps`), as the node itself defines them.
//!
//! NAME names the app, its one function, its route (`/NAME`) and, unless
//! `--dir` says otherwise, the directory. The directory is written in a
//! temporary sibling and renamed into place, so it is never half made, and
//! an existing path is never touched.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::args::{Language, NewArgs};

/// The componentize-py version the Python template is built with; the same
/// as `scripts/guest-toolchains.sh` installs.
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// A file of a template: its path in the new directory and its text, in
/// which `{{name}}` and `{{crate}}` are replaced.
type File = (&'static str, &'static str);

/// Includes a file of the repository's `templates/` directory.
macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../../../../templates/", $path))
    };
}

/// Includes a file of the repository's `wit/deps/` directory: the WIT the
/// node implements for its own capabilities.
macro_rules! node_wit {
    ($path:literal) => {
        include_str!(concat!("../../../../wit/deps/", $path))
    };
}

const RUST: &[File] = &[
    ("Cargo.toml", template!("rust/Cargo.toml.tmpl")),
    ("stratus.toml", template!("rust/stratus.toml")),
    ("src/lib.rs", template!("rust/src/lib.rs")),
    ("README.md", template!("rust/README.md")),
    (".gitignore", template!("rust/gitignore")),
];

const PYTHON: &[File] = &[
    ("stratus.toml", template!("python/stratus.toml")),
    ("app.py", template!("python/app.py")),
    ("wit/world.wit", template!("python/wit/world.wit")),
    ("README.md", template!("python/README.md")),
    (".gitignore", template!("python/gitignore")),
];

const JS: &[File] = &[
    ("stratus.toml", template!("js/stratus.toml")),
    ("app.js", template!("js/app.js")),
    ("package.json", template!("js/package.json")),
    ("package-lock.json", template!("js/package-lock.json")),
    ("wit/world.wit", template!("js/wit/world.wit")),
    ("README.md", template!("js/README.md")),
    (".gitignore", template!("js/gitignore")),
];

/// The dependencies of a Python or JavaScript function's world.
const WIT_DEPS: &[File] = &[
    ("wit/deps/cli.wit", template!("wit/wasi/cli.wit")),
    ("wit/deps/clocks.wit", template!("wit/wasi/clocks.wit")),
    (
        "wit/deps/filesystem.wit",
        template!("wit/wasi/filesystem.wit"),
    ),
    ("wit/deps/http.wit", template!("wit/wasi/http.wit")),
    ("wit/deps/io.wit", template!("wit/wasi/io.wit")),
    ("wit/deps/random.wit", template!("wit/wasi/random.wit")),
    ("wit/deps/sockets.wit", template!("wit/wasi/sockets.wit")),
    (
        "wit/deps/keyvalue/world.wit",
        node_wit!("keyvalue/world.wit"),
    ),
    (
        "wit/deps/keyvalue/store.wit",
        node_wit!("keyvalue/store.wit"),
    ),
    (
        "wit/deps/keyvalue/atomic.wit",
        node_wit!("keyvalue/atomic.wit"),
    ),
    (
        "wit/deps/keyvalue/batch.wit",
        node_wit!("keyvalue/batch.wit"),
    ),
    ("wit/deps/config/world.wit", node_wit!("config/world.wit")),
    ("wit/deps/config/store.wit", node_wit!("config/store.wit")),
];

/// Names cargo refuses for a package: Rust's keywords and its built-in crates.
const RUST_RESERVED: &[&str] = &[
    "abstract", "alloc", "as", "async", "await", "become", "box", "break", "const", "continue",
    "core", "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen",
    "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv",
    "pub", "ref", "return", "self", "static", "std", "struct", "super", "test", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name, args.language)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    create(&dir, &render(args.language, &args.name))?;

    let language = match args.language {
        Language::Rust => "Rust",
        Language::Python => "Python",
        Language::Js => "JavaScript",
    };
    println!(
        "Created the {language} function \"{}\" in {}",
        args.name,
        dir.display()
    );
    let mut steps: Vec<(String, &str)> = Vec::new();
    match args.language {
        Language::Rust => steps.push(("rustup target add wasm32-wasip2".into(), "once")),
        Language::Python => steps.push((
            format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
            "once",
        )),
        Language::Js => {}
    }
    steps.push((format!("cd {}", shell_word(&dir)), ""));
    if args.language == Language::Js {
        steps.push(("npm install".into(), "jco and componentize-js, once"));
    }
    steps.push(("stratus up".into(), "build and serve it"));
    steps.push((format!("curl http://127.0.0.1:8080/{}", args.name), ""));
    println!("\nNext:");
    for (command, comment) in steps {
        if comment.is_empty() {
            println!("  {command}");
        } else {
            println!("  {command:<38} # {comment}");
        }
    }
    Ok(())
}

/// Checks that `name` can name the app, the function, the route and, for
/// Rust, the crate; the error says what is allowed.
fn check_name(name: &str, language: Language) -> anyhow::Result<()> {
    if !stratus_manifest::valid_name(name) {
        bail!(
            "{name:?} is not a valid function name: {}, e.g. \"hello-world\"",
            stratus_manifest::NAME_RULE
        );
    }
    if stratus_manifest::RESERVED_FUNCTION_NAMES.contains(&name) {
        bail!(
            "{name:?} is reserved: http://{name}.svc/ is the node's own {name} service; choose another name"
        );
    }
    if language == Language::Rust && RUST_RESERVED.contains(&name) {
        bail!(
            "{name:?} cannot name a Rust crate (it is a keyword or a built-in crate); choose another name"
        );
    }
    Ok(())
}

/// The files of a new function, placeholders replaced.
fn render(language: Language, name: &str) -> Vec<(&'static str, String)> {
    let files: Vec<&File> = match language {
        Language::Rust => RUST.iter().collect(),
        Language::Python => PYTHON.iter().chain(WIT_DEPS).collect(),
        Language::Js => JS.iter().chain(WIT_DEPS).collect(),
    };
    let crate_name = name.replace('-', "_");
    files
        .into_iter()
        .map(|(path, text)| {
            let text = text
                .replace("{{name}}", name)
                .replace("{{crate}}", &crate_name);
            (*path, text)
        })
        .collect()
}

/// Writes `files` into a temporary directory next to `dir`, then renames it
/// to `dir`; fails without touching anything if `dir` exists.
fn create(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    if dir.as_os_str().is_empty() {
        bail!("the directory to create is empty; give --dir a path");
    }
    if dir.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; choose another name or --dir (stratus new never overwrites)",
            dir.display()
        );
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".stratus-new-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    for (path, text) in files {
        let target = staging.path().join(path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
    }
    // A temporary directory is private (0700); the function's is not.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot set the permissions of {}", dir.display()))?;
    }
    // Checked again just before: the directory may have appeared meanwhile.
    if dir.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; choose another name or --dir (stratus new never overwrites)",
            dir.display()
        );
    }
    fs::rename(staging.path(), dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    // Renamed away: nothing is left for the guard to remove.
    let _ = staging.keep();
    Ok(())
}

/// `path` as one shell word, quoted when it needs to be.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LANGUAGES: [Language; 3] = [Language::Rust, Language::Python, Language::Js];

    #[test]
    fn names_follow_the_manifest_rule() {
        for name in ["a", "hello", "hello-world", "a1-2-b", &"x".repeat(63)] {
            for language in LANGUAGES {
                check_name(name, language).unwrap();
            }
        }
        for name in [
            "",
            "Hello",
            "1abc",
            "-a",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"x".repeat(64),
        ] {
            let error = check_name(name, Language::Python).unwrap_err().to_string();
            assert!(error.contains("is not a valid function name"), "{error}");
            assert!(error.contains("lowercase ASCII letters"), "{error}");
        }
        let error = check_name("fn", Language::Rust).unwrap_err().to_string();
        assert!(error.contains("cannot name a Rust crate"), "{error}");
        // The manifest would refuse it: it shadows the node's queue.svc.
        let error = check_name("queue", Language::Js).unwrap_err().to_string();
        assert!(error.contains("\"queue\" is reserved"), "{error}");
        check_name("fn", Language::Js).unwrap();
    }

    #[test]
    fn every_rendered_manifest_is_valid_and_names_its_component() {
        for language in LANGUAGES {
            for name in ["hello", "my-api-2"] {
                let files = render(language, name);
                let manifest = &files.iter().find(|(p, _)| *p == "stratus.toml").unwrap().1;
                let parsed = stratus_manifest::Manifest::parse(manifest, "stratus.toml").unwrap();
                assert_eq!(parsed.app.name, name);
                let function = &parsed.functions[0];
                assert_eq!(function.name, name);
                assert!(function.build.is_some(), "{language:?}");
                let routes: Vec<String> = function.routes.iter().map(|r| r.to_string()).collect();
                assert_eq!(routes, [format!("/{name}"), format!("/{name}/...")]);
                for (path, text) in &files {
                    assert!(
                        !text.contains("{{"),
                        "{language:?} {path} keeps a placeholder"
                    );
                }
            }
        }
        let rust = render(Language::Rust, "my-api");
        let manifest = &rust.iter().find(|(p, _)| *p == "stratus.toml").unwrap().1;
        assert!(manifest.contains("release/my_api.wasm"), "{manifest}");
        let cargo = &rust.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("name = \"my-api\"") && cargo.contains("\n[workspace]"));
    }

    /// The templates build with the toolchains `scripts/guest-toolchains.sh`
    /// installs for the examples, which CI tests.
    #[test]
    fn templates_pin_the_toolchains_the_examples_use() {
        let script = include_str!("../../../../scripts/guest-toolchains.sh");
        assert!(
            script.contains(&format!(
                "COMPONENTIZE_PY_VERSION={COMPONENTIZE_PY_VERSION}\n"
            )),
            "scripts/guest-toolchains.sh pins another componentize-py"
        );
        let examples: serde_json::Value =
            serde_json::from_str(include_str!("../../../../examples/package-lock.json")).unwrap();
        let template: serde_json::Value =
            serde_json::from_str(&render_one(Language::Js, "package-lock.json")).unwrap();
        // The same packages at the same versions, whatever the root is called.
        let packages = |lock: &serde_json::Value| {
            let mut packages = lock["packages"].as_object().unwrap().clone();
            packages.remove("");
            packages
        };
        assert!(packages(&examples).len() > 10);
        assert_eq!(packages(&examples), packages(&template));
        let package: serde_json::Value =
            serde_json::from_str(&render_one(Language::Js, "package.json")).unwrap();
        assert_eq!(
            package["devDependencies"],
            examples["packages"][""]["devDependencies"]
        );
    }

    #[test]
    fn python_and_js_get_the_wit_of_their_world() {
        for language in [Language::Python, Language::Js] {
            let files = render(language, "x");
            let paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
            for dep in [
                "wit/deps/http.wit",
                "wit/deps/keyvalue/store.wit",
                "wit/deps/config/store.wit",
            ] {
                assert!(paths.contains(&dep), "{language:?} lacks {dep}");
            }
            let world = render_one(language, "wit/world.wit");
            assert!(world.contains("export wasi:http/incoming-handler@0.2.10;"));
            let http = render_one(language, "wit/deps/http.wit");
            assert!(http.contains("package wasi:http@0.2.10;"));
        }
    }

    #[test]
    fn creates_the_directory_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/hello");
        create(&dir, &render(Language::Python, "hello")).unwrap();
        assert!(dir.join("app.py").is_file());
        assert!(dir.join("wit/deps/keyvalue/atomic.wit").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        let manifest = fs::read_to_string(dir.join("stratus.toml")).unwrap();
        assert!(manifest.contains("name = \"hello\""));
        // Nothing else is left in the parent.
        let entries: Vec<_> = fs::read_dir(dir.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);

        fs::write(dir.join("app.py"), "mine").unwrap();
        let error = create(&dir, &render(Language::Python, "hello"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(fs::read_to_string(dir.join("app.py")).unwrap(), "mine");

        // An existing empty directory or file is not replaced either.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(create(&empty, &render(Language::Rust, "empty")).is_err());
        assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
        let error = create(Path::new(""), &[]).unwrap_err().to_string();
        assert!(error.contains("give --dir a path"), "{error}");
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(Path::new("hello")), "hello");
        assert_eq!(shell_word(Path::new("../fns/hello-2")), "../fns/hello-2");
        assert_eq!(shell_word(Path::new("my dir")), "'my dir'");
        assert_eq!(shell_word(Path::new("it's")), r"'it'\''s'");
    }

    fn render_one(language: Language, path: &str) -> String {
        render(language, "x")
            .into_iter()
            .find(|(p, _)| *p == path)
            .unwrap()
            .1
    }
}
