//! What each endpoint needs: the least [`Role`] that may call it, and
//! whether it is the node's (a node-wide token) or a namespace's. One table
//! for the whole API, so a reader sees every rule at once and a test can
//! check that no route falls through to the default.

use http::Method;
use stratus_storage::Role;

/// What an endpoint needs of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    /// The node's endpoint, not a namespace's: a namespace's token may not
    /// call it whatever its role (what it shows spans namespaces).
    pub node_wide: bool,
    /// About the token itself (`/v1/whoami`): any valid token may call it,
    /// whatever namespace the path names, since it shows only the token.
    pub own: bool,
}

const fn namespaced(role: Role) -> Access {
    Access {
        role,
        node_wide: false,
        own: false,
    }
}

/// An endpoint no rule names: only the node's own token and node-wide
/// admins may call it, so a route added without a rule is closed, not open.
pub const UNLISTED: Access = Access {
    role: Role::Admin,
    node_wide: true,
    own: false,
};

/// The access `method` on the route `route` (as routed: `/v1/apps/{app}`)
/// needs.
pub fn access(method: &Method, route: &str) -> Access {
    use Role::*;
    let (get, post, put, delete) = (
        // axum answers HEAD with the GET handler: it needs what GET does.
        method == Method::GET || method == Method::HEAD,
        method == Method::POST,
        method == Method::PUT,
        method == Method::DELETE,
    );
    match route {
        "/v1/nodes" | "/v1/namespaces" if get => Access {
            role: Viewer,
            node_wide: true,
            own: false,
        },
        "/v1/whoami" if get => Access {
            role: Viewer,
            node_wide: false,
            own: true,
        },
        "/v1/apps"
        | "/v1/apps/{app}"
        | "/v1/apps/{app}/versions"
        | "/v1/apps/{app}/rollout"
        | "/v1/apps/{app}/traffic"
        | "/v1/apps/{app}/secrets"
        | "/v1/functions"
        | "/v1/functions/{function}/logs"
        | "/v1/functions/{function}/events"
        | "/v1/functions/{function}/dead-letters"
        | "/v1/functions/{function}/series"
        | "/v1/functions/{function}/invocations"
        | "/v1/queues"
        | "/v1/invocations/{id}"
        | "/v1/events/{id}"
        | "/v1/usage"
        | "/v1/deploys"
            if get =>
        {
            namespaced(Viewer)
        }
        "/v1/functions/{function}/invocations"
        | "/v1/apps/{app}/queues/{queue}/events"
        | "/v1/queues/{queue}/events"
            if post =>
        {
            namespaced(Invoker)
        }
        "/v1/apps"
        | "/v1/apps/{app}/versions/{version}/activate"
        | "/v1/apps/{app}/rollback"
        | "/v1/functions/{function}/dead-letters/redrive"
        | "/v1/functions/{function}/events/{id}/replay"
            if post =>
        {
            namespaced(Deployer)
        }
        "/v1/apps/{app}" if delete => namespaced(Deployer),
        "/v1/apps/{app}/traffic" if put => namespaced(Deployer),
        "/v1/apps/{app}/secrets/{name}" if put || delete => namespaced(Deployer),
        "/v1/tokens" if get || post => namespaced(Admin),
        "/v1/audit" if get => namespaced(Admin),
        "/v1/quotas" if get => namespaced(Viewer),
        // A namespace's own admins may not raise its quotas.
        "/v1/quotas" if put => Access {
            role: Admin,
            node_wide: true,
            own: false,
        },
        "/v1/tokens/{id}" if delete => namespaced(Admin),
        _ => UNLISTED,
    }
}
