//! Why a manifest was refused.
//!
//! Every message is written for the person editing `stratus.toml`: it starts
//! with `file:line:column`, names the key (and the function) at fault, and
//! where it can, says what to write instead.

use std::fmt;
use std::path::PathBuf;

/// A position in a manifest file, shown as `file:line:column` (both 1-based;
/// the column counts characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`, read from the file `file`.
    /// This reads the whole text; validation, which asks for many
    /// locations, builds one `LineIndex` instead.
    pub fn at(file: &str, text: &str, offset: usize) -> Location {
        crate::lines::LineIndex::new(text).location(file, offset)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A manifest that cannot be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file does not exist.
    #[error("{}: no such manifest file; create a stratus.toml with an [app] table and a [[function]] table", path.display())]
    NotFound { path: PathBuf },

    /// The manifest file exists but cannot be read.
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The manifest is longer than [`crate::MAX_MANIFEST_SIZE`]; refused
    /// before it is parsed.
    #[error(
        "{file}: the manifest is {size} bytes, more than the {limit} ({} bytes) a manifest may have; make it smaller: one prefix route such as \"/api/...\" serves a whole tree of paths",
        limit.bytes()
    )]
    TooLarge {
        file: String,
        size: u64,
        limit: crate::ByteSize,
    },

    /// The text is not valid TOML, a key is unknown, or a table has the
    /// wrong shape. `message` is toml's own text (e.g. "unknown field `foo`,
    /// expected one of `name`, ...").
    #[error("{location}: {message}")]
    Toml { location: Location, message: String },

    /// A value is missing, of the wrong type or out of range. `key` is the
    /// manifest key at fault (`name`, `memory`, `routes`, ...).
    #[error("{location}: {message}")]
    Invalid {
        location: Location,
        key: String,
        message: String,
    },

    /// Two functions of the app have the same name.
    #[error(
        "{location}: function name \"{name}\" is already used by the function at line {first_line}; function names must be unique within an app"
    )]
    DuplicateFunction {
        location: Location,
        name: String,
        /// The line where the name was first used.
        first_line: usize,
    },

    /// The same route appears twice in the app.
    #[error(
        "{location}: {}",
        duplicate_route(route, function, other_function, *first_line)
    )]
    DuplicateRoute {
        location: Location,
        route: String,
        /// The function whose route is refused (the later one).
        function: String,
        /// The function that listed the route first (may be `function`).
        other_function: String,
        /// The line where the route was first listed.
        first_line: usize,
    },

    /// A function's component file is not where the manifest says.
    #[error(
        "{}: function \"{function}\": the `component` file {} does not exist; {}",
        manifest.display(), path.display(), missing_component_hint(build)
    )]
    MissingComponent {
        /// The manifest file naming the component.
        manifest: PathBuf,
        function: String,
        /// The resolved path that was looked for.
        path: PathBuf,
        /// The function's `build` command, if it has one.
        build: Option<String>,
    },
}

impl ManifestError {
    /// Where in the manifest the problem is, when it is about one place.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ManifestError::Toml { location, .. }
            | ManifestError::Invalid { location, .. }
            | ManifestError::DuplicateFunction { location, .. }
            | ManifestError::DuplicateRoute { location, .. } => Some(location),
            ManifestError::NotFound { .. }
            | ManifestError::Read { .. }
            | ManifestError::TooLarge { .. }
            | ManifestError::MissingComponent { .. } => None,
        }
    }
}

fn duplicate_route(route: &str, function: &str, other: &str, first_line: usize) -> String {
    if function == other {
        format!(
            "function \"{function}\" lists route \"{route}\" twice (first at line {first_line}); remove one"
        )
    } else {
        format!(
            "route \"{route}\" of function \"{function}\" is already used by function \"{other}\" (line {first_line}); a route may belong to only one function"
        )
    }
}

fn missing_component_hint(build: &Option<String>) -> String {
    match build {
        Some(command) => format!("build it first with the function's `build` command: {command}"),
        None => "build the component, or fix the path (it is relative to the manifest's directory)"
            .to_owned(),
    }
}
