//! The shared test plane (`berth-testplane`): an API server in process,
//! clients into it, waiting for an expected state.

#![allow(unused_imports)]

pub use berth_testplane::Plane;
pub use berth_testplane::wait::eventually;
