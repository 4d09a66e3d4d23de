//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch, and server-side apply.
