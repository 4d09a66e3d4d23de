//! placeholder
use serde_json::Value;
/// placeholder
pub fn bootstrap_policy() -> Vec<Value> {
    vec![]
}
