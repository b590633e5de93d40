//! Secrets: where the runtime reads the ones a function was granted.

/// Where granted secrets are read from: the node's encrypted secret store.
pub trait SecretSource: Send + Sync + 'static {
    /// The plaintext of secret `name` of `app`, none when it is not set.
    /// An error's message must not contain the value.
    fn reveal(&self, app: &str, name: &str) -> Result<Option<String>, String>;
}
