//! DefaultIngressClass: an Ingress created without
//! `spec.ingressClassName` (and without the older
//! `kubernetes.io/ingress.class` annotation) gets the default
//! IngressClass, the one annotated
//! `ingressclass.kubernetes.io/is-default-class: "true"` (the newest of
//! several, then the first by name).

use serde_json::{Value, json};

use super::key_prefix;
use crate::api::Api;
use crate::error::ApiError;
use crate::meta;

const IS_DEFAULT: &str = "ingressclass.kubernetes.io/is-default-class";
const LEGACY: &str = "kubernetes.io/ingress.class";

/// Sets the Ingress's class to the default one if it names none.
pub async fn default_class(api: &Api, ingress: &mut Value) -> Result<(), ApiError> {
    let named = ingress
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null())
        || ingress
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LEGACY))
            .is_some();
    if named {
        return Ok(());
    }
    let prefix = format!(
        "{}/",
        key_prefix(api, "networking.k8s.io", "ingressclasses", "")
    );
    let (classes, _) = api.objects.list_all(&prefix, 0).await?;
    let default = classes
        .iter()
        .filter(|c| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(IS_DEFAULT))
                .and_then(Value::as_str)
                == Some("true")
        })
        .max_by(|a, b| {
            meta::meta_str(a, "creationTimestamp")
                .cmp(meta::meta_str(b, "creationTimestamp"))
                .then_with(|| meta::meta_str(b, "name").cmp(meta::meta_str(a, "name")))
        });
    if let Some(name) = default.map(|c| meta::meta_str(c, "name").to_owned()) {
        let spec = ingress
            .as_object_mut()
            .map(|o| o.entry("spec").or_insert_with(|| json!({})));
        if let Some(spec) = spec.and_then(Value::as_object_mut) {
            spec.insert("ingressClassName".to_owned(), json!(name));
        }
    }
    Ok(())
}
