//! Test support shared by the integration tests of the scheduler and the
//! controllers (a dev-dependency only, never published):
//!
//! - [`Plane`]: berth's API server in this process over a memory store,
//!   and clients into it as the admin, any user, or a controller's
//!   ServiceAccount (as `berth server` wires its controllers);
//! - [`wait`]: polling for an expected state with a timeout (tests never
//!   sleep as an assertion);
//! - [`kubelet`]: pod statuses as the node agent would write them;
//! - [`objects`]: creating objects from JSON, namespaces, listing pods
//!   and events;
//! - [`logs`]: test output logging when `RUST_LOG` is set.
#![forbid(unsafe_code)]

pub mod kubelet;
pub mod objects;
mod plane;
pub mod wait;

pub use plane::Plane;

/// Logs to the test's output when `RUST_LOG` is set.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Starts a [`Plane`] (with [`logs`]), creates the namespace `ns`, and
/// returns the plane and its admin client: most tests' first lines.
pub async fn start_in(ns: &str) -> (Plane, kube::Client) {
    logs();
    let plane = Plane::start().await;
    let admin = plane.admin();
    objects::namespace(&admin, ns).await;
    (plane, admin)
}
