//! Docker's JSON shapes of engine objects, made from the engine's typed
//! records. The field names are docker's, because `--format` templates,
//! docker-py and Compose read them; berth's CLI prints the same documents.

pub mod container;
pub mod events;
pub mod exec;
pub mod image;
pub mod network;
pub mod stats;
pub mod text;
pub mod volume;

pub use container::{command_line, inspect, mounts, status_text, summary};
pub use events::event;
pub use exec::exec_inspect;
pub use image::{image_history, image_inspect, image_summaries};
pub use network::network;
pub use stats::stats;
pub use volume::volume;
