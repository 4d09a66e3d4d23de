//! Containers on disk: the record (`container.json`), the state
//! (`state.json`), their schemas and migrations, and the store that holds
//! them with the names.

pub mod migrate;
mod record;
mod state;
mod store;

pub use record::{RECORD_SCHEMA, Record};
pub use state::{STATE_SCHEMA, State, Status, ZERO_TIME, process_start};
pub use store::{
    CREATING, Lock, SHM_DIR, Store, mount_shm, random_name, unmount_shm, valid_name, write_atomic,
};
