//! Deploy-time checks that turn "wasmtime refused it" into a message a user
//! can act on: is this a component, is it an HTTP handler, and does it import
//! only what the node links.

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::ValidationError;

/// The interfaces (without version) that every function may import. All are
/// WASI 0.2.x; `wasi:filesystem` has no preopened directory and `wasi:sockets`
/// denies every address, so importing them is harmless — toolchains such as
/// Rust std import them even for a hello world.
pub const PROVIDED_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

const HANDLER: &str = "wasi:http/incoming-handler";

/// Cheap checks on the raw bytes, before spending time compiling them.
pub(crate) fn check_bytes(bytes: &[u8]) -> Result<(), ValidationError> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(ValidationError::CoreModule)
    } else {
        Err(ValidationError::NotWasm)
    }
}

/// Checks the compiled component's world: it may import only
/// [`PROVIDED_INTERFACES`] at a 0.2.x version and the capabilities' own
/// interfaces (granted or not: that is checked per function), and must
/// export the HTTP
/// handler. Imports come first so every unsupported import is named at once.
pub(crate) fn check_world(engine: &Engine, component: &Component) -> Result<(), ValidationError> {
    let ty = component.component_type();

    let unsupported: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| {
            !PROVIDED_INTERFACES.iter().any(|p| is_wasi_02(name, p))
                && crate::capabilities::capability_of(name).is_none()
        })
        .map(str::to_string)
        .collect();
    if !unsupported.is_empty() {
        return Err(ValidationError::UnsupportedImports {
            imports: unsupported,
        });
    }

    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if !exports.iter().any(|name| is_wasi_02(name, HANDLER)) {
        let found = if exports.is_empty() {
            " (it exports nothing)".to_string()
        } else {
            let hint = if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
                "; it is a `wasi:cli` command, which runs `main` once instead of handling requests"
            } else {
                ""
            };
            format!(" (it exports {}{hint})", exports.join(", "))
        };
        return Err(ValidationError::NoHttpHandler { found });
    }

    Ok(())
}

/// `wasi:io/streams@0.2.3` is interface `wasi:io/streams` at a 0.2 version.
fn is_wasi_02(name: &str, interface: &str) -> bool {
    name.strip_prefix(interface)
        .and_then(|rest| rest.strip_prefix("@0.2."))
        .is_some_and(|patch| !patch.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_be_wasi_02() {
        assert!(is_wasi_02("wasi:io/streams@0.2.3", "wasi:io/streams"));
        assert!(!is_wasi_02("wasi:io/streams@0.3.0", "wasi:io/streams"));
        assert!(!is_wasi_02("wasi:io/streams-x@0.2.0", "wasi:io/streams"));
        assert!(!is_wasi_02("wasi:io/streams", "wasi:io/streams"));
    }

    #[test]
    fn raw_bytes_are_classified() {
        let module = wat::parse_str("(module)").unwrap();
        assert!(matches!(
            check_bytes(&module),
            Err(ValidationError::CoreModule)
        ));
        let component = wat::parse_str("(component)").unwrap();
        assert!(check_bytes(&component).is_ok());
        assert!(matches!(
            check_bytes(b"garbage"),
            Err(ValidationError::NotWasm)
        ));
        assert!(matches!(check_bytes(b""), Err(ValidationError::NotWasm)));
    }
}
