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

/// What one instance slot of the node's pool holds for each core module:
/// wasmtime refuses to load a component that needs more, so deploy checks
/// the component against it first and says which limit it exceeds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotLimits {
    /// Elements of one table (`table_elements`).
    pub table_elements: u64,
    /// Tables one core module may define (`max_tables_per_module`).
    pub tables_per_module: u32,
    /// Memories one core module may define (`max_memories_per_module`).
    pub memories_per_module: u32,
    /// Bytes of one linear memory (`max_memory_size`).
    pub memory_bytes: u64,
}

/// Refuses a component whose code is more than the node compiles: the
/// functions and the bytes of code of all its core modules together. The
/// compiler's time and memory grow with both, and it cannot be stopped
/// once started.
pub(crate) fn check_code_size(
    bytes: &[u8],
    limits: &crate::engine::CompileLimits,
) -> Result<(), ValidationError> {
    let (mut functions, mut code) = (0_u64, 0_u64);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionStart { count, size, .. }) => {
                functions += u64::from(count);
                code += u64::from(size);
            }
            Ok(_) => {}
            // Bytes that do not parse: the compiler's validation says why.
            Err(_) => break,
        }
    }
    if functions > limits.max_functions {
        return Err(ValidationError::OverNodeLimit {
            what: format!("{functions} functions"),
            limit: limits.max_functions.to_string(),
            setting: "--compile-max-functions",
        });
    }
    if code > limits.max_code_bytes {
        return Err(ValidationError::OverNodeLimit {
            what: format!("{} MiB of code", code.div_ceil(1 << 20)),
            limit: format!("{} MiB", limits.max_code_bytes >> 20),
            setting: "--compile-max-code",
        });
    }
    Ok(())
}

/// Checks the tables and memories every core module of the component
/// defines against the pool's slots. Bytes that do not parse pass: the
/// compiler's own validation then reports what is wrong with them.
pub(crate) fn check_limits(bytes: &[u8], limits: &SlotLimits) -> Result<(), ValidationError> {
    use wasmparser::Payload;

    let over = |what: String, limit: String, setting: &'static str| {
        Err(ValidationError::OverNodeLimit {
            what,
            limit,
            setting,
        })
    };
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::TableSection(tables)) => {
                if tables.count() > limits.tables_per_module {
                    return over(
                        format!("{} tables in one core module", tables.count()),
                        format!("{} per module", limits.tables_per_module),
                        "max_tables_per_module",
                    );
                }
                for table in tables {
                    let Ok(table) = table else { return Ok(()) };
                    if table.ty.initial > limits.table_elements {
                        return over(
                            format!("a table of {} elements", table.ty.initial),
                            limits.table_elements.to_string(),
                            "table_elements",
                        );
                    }
                }
            }
            Ok(Payload::MemorySection(memories)) => {
                if memories.count() > limits.memories_per_module {
                    return over(
                        format!("{} linear memories in one core module", memories.count()),
                        format!("{} per module", limits.memories_per_module),
                        "max_memories_per_module",
                    );
                }
                for memory in memories {
                    let Ok(memory) = memory else { return Ok(()) };
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16).min(63);
                    let initial = memory.initial.saturating_mul(page);
                    if initial > limits.memory_bytes {
                        return over(
                            format!("a linear memory of {} to start with", mib(initial)),
                            mib(limits.memory_bytes),
                            "max_memory_size",
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Bytes in MiB, the unit memory limits are given in.
fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
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

    const LIMITS: SlotLimits = SlotLimits {
        table_elements: 20_000,
        tables_per_module: 1,
        memories_per_module: 1,
        memory_bytes: 64 << 20,
    };

    fn limit_error(wat: &str) -> Option<String> {
        let bytes = wat::parse_str(wat).unwrap();
        check_limits(&bytes, &LIMITS).err().map(|e| e.to_string())
    }

    #[test]
    fn tables_and_memories_are_checked_against_the_slots() {
        let fits = r#"(component (core module (table 20000 funcref) (memory 1024)))"#;
        assert_eq!(limit_error(fits), None);

        let table = limit_error(r#"(component (core module (table 5000000 funcref)))"#).unwrap();
        assert_eq!(
            table,
            "the component declares a table of 5000000 elements; this node allows at most 20000 (table_elements)"
        );
        let nested = r#"(component (component (core module (table 20001 funcref))))"#;
        assert!(limit_error(nested).unwrap().contains("20001 elements"));

        let tables =
            limit_error(r#"(component (core module (table 1 funcref) (table 1 funcref)))"#);
        assert!(
            tables
                .as_deref()
                .unwrap()
                .contains("2 tables in one core module")
                && tables
                    .as_deref()
                    .unwrap()
                    .contains("(max_tables_per_module)"),
            "{tables:?}"
        );
        let memory = limit_error(r#"(component (core module (memory 1025)))"#).unwrap();
        assert_eq!(
            memory,
            "the component declares a linear memory of 64.1 MiB to start with; this node allows at most 64 MiB (max_memory_size)"
        );
        // An imported table is the exporter's; only definitions count.
        let imported = r#"(component
            (core module $a (table (export "t") 10 funcref))
            (core module $b (import "a" "t" (table 10 funcref)))
            (core instance $a (instantiate $a))
            (core instance (instantiate $b (with "a" (instance $a)))))"#;
        assert_eq!(limit_error(imported), None);
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
