//! Answers of the API, read as kube's controllers read them.

/// Whether the API answered 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    code(e) == Some(404)
}

/// Whether the API answered 409 (a conflict or an existing name).
pub fn is_conflict(e: &kube::Error) -> bool {
    code(e) == Some(409)
}

/// The HTTP code of an API error.
pub fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The message of an error as the API put it (what kube's controllers put
/// in conditions and events), or the error's own text.
pub fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether a create failed because the namespace is being deleted (kube's
/// `NamespaceTerminating` cause; berth's API says so in the message).
pub fn is_namespace_terminating(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => {
            status
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
                || (status.code == 403 && status.message.contains("because it is being terminated"))
        }
        _ => false,
    }
}
