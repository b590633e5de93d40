//! Why a control-plane operation was refused. Each variant maps to one HTTP
//! status in the admin API; the message is written for the person deploying.

/// A refused or failed control-plane operation.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The manifest does not parse or validate.
    #[error("{0}")]
    Manifest(#[from] stratus_manifest::ManifestError),
    /// A component is missing from the upload, or one was sent that the
    /// manifest does not name.
    #[error("{0}")]
    Upload(String),
    /// A function's component cannot run on this node. `component` is the
    /// file as the manifest names it, so a wrong file is seen at once.
    #[error("function \"{function}\" (component \"{component}\"): {source}")]
    Component {
        function: String,
        component: String,
        #[source]
        source: stratus_runtime::RuntimeError,
    },
    /// A function asks for more than the node allows.
    #[error("function \"{function}\": {message}")]
    Limit { function: String, message: String },
    /// The deploy would take its namespace past a quota.
    #[error("namespace \"{namespace}\" is over its quota {quota}: {message}")]
    Quota {
        namespace: String,
        quota: String,
        message: String,
    },
    /// The deploy asked for no new capabilities, and the version gains
    /// some over the live one.
    #[error("the new version of app \"{app}\" gains capabilities over the live one, and the deploy asked for none (require_no_new_capabilities):\n  {}", gains.lines().join("\n  "))]
    CapabilitiesGained {
        app: String,
        gains: crate::gains::Gains,
    },
    /// A route is already served by another app.
    #[error("{0}")]
    RouteConflict(stratus_invoke::RouteConflict),
    #[error("app \"{0}\" does not exist")]
    AppNotFound(String),
    #[error("app \"{app}\" has no version {version}")]
    VersionNotFound { app: String, version: u32 },
    /// A traffic split or canary plan that cannot be served as asked.
    #[error("{0}")]
    Traffic(String),
    #[error("app \"{0}\" has no earlier version to roll back to")]
    NoEarlierVersion(String),
    #[error("function \"{0}\" is not live in any app")]
    FunctionNotFound(String),
    #[error("function name \"{name}\" is used by several apps ({}); name the app too", apps.join(", "))]
    AmbiguousFunction { name: String, apps: Vec<String> },
    /// The app store failed (disk full, permissions, corruption), or
    /// refused a version (a function named twice).
    #[error("{0}")]
    Apps(#[from] stratus_storage::AppStoreError),
    /// The artifact store failed (disk full, permissions).
    #[error("{0}")]
    Artifacts(#[from] stratus_storage::ArtifactError),
    /// A version would point at a component that is not stored.
    #[error(
        "function \"{function}\" of app \"{app}\" uses component {sha256}, which has not been uploaded"
    )]
    ComponentNotUploaded {
        app: String,
        function: String,
        sha256: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        ControlError::Internal(e.to_string())
    }
}
