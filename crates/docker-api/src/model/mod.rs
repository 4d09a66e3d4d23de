//! Docker's request bodies as typed structs (what the docker CLI, docker-py
//! and Compose send), read strictly: a field of the wrong type or out of
//! range is a 400 naming the field, as dockerd answers; `null` means unset;
//! unknown fields are ignored, as dockerd ignores them. Each body turns
//! into the engine's typed request here, with `crate::syntax` for the
//! fields docker carries as strings.

pub mod container;
pub mod exec;
pub mod filters;
pub mod image;
pub mod network;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Reads a JSON body into `T`, naming the field that does not fit.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            format!("invalid JSON: {inner}")
        } else {
            format!("invalid JSON: {path}: {inner}")
        }
    })
}

/// docker's `StrSlice`: a string (one element) or a list of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrSlice(pub Vec<String>);

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrSlice, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        match Either::deserialize(d) {
            Ok(Either::One(s)) => Ok(StrSlice(vec![s])),
            Ok(Either::Many(v)) => Ok(StrSlice(v)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}
