//! Get, list, create, replace, patch and delete of objects and their
//! `status` subresource.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Api, Ctx, body_json, respond};
use crate::error::{ApiError, Cause};
use crate::kinds::{self, FieldValidation, Op};
use crate::meta;
use crate::request::{Output, Target};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::{self, Change, parse_rv};
use crate::table;

/// How long an Event lives.
pub const EVENT_TTL: Duration = Duration::from_secs(3600);

/// The kind of a list of `kind`.
fn list_kind(kind: &str) -> String {
    format!("{kind}List")
}

/// Sets apiVersion and kind as the URL names them (converting the stored
/// form to the served version first).
pub fn stamp(target: &Target, obj: &mut Value) {
    *obj = crate::conversion::from_storage(&target.resource, std::mem::take(obj));
    if let Some(map) = obj.as_object_mut() {
        map.insert(
            "apiVersion".to_owned(),
            json!(target.resource.api_version()),
        );
        map.insert("kind".to_owned(), json!(target.resource.kind));
    }
}

/// GET of one object.
pub async fn get(api: &Api, target: &Target, ctx: &Ctx) -> Result<Response, ApiError> {
    let (mut obj, _) = api.objects.get(target).await?;
    stamp(target, &mut obj);
    render_one(api, target, ctx, obj, 200)
}

/// Renders one object in the asked-for form.
pub fn render_one(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    obj: Value,
    code: u16,
) -> Result<Response, ApiError> {
    let body = match ctx.output {
        Output::Json => obj,
        Output::Table => table::table(api, &target.resource, std::slice::from_ref(&obj), "", true),
        Output::Metadata => partial_metadata(&obj),
    };
    Ok(respond(code, &body, &ctx.warnings))
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta::metadata(obj),
    })
}

/// A list continue token: the revision and the last key (base64 JSON, as
/// kube-apiserver makes them).
fn encode_continue(revision: i64, key: &str) -> String {
    use base64::Engine;
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": key});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let revision = value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = value.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    Ok((revision, start.to_owned()))
}

/// The selectors of a list or watch.
pub fn selectors(target: &Target, ctx: &Ctx) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(
        ctx.query.get("fieldSelector").unwrap_or(""),
        &target.resource.group,
        &target.resource.plural,
    )?;
    Ok((labels, fields))
}

/// The store prefix of a collection request.
pub fn collection_prefix(target: &Target) -> String {
    if target.resource.namespaced && !target.namespace.is_empty() {
        target.resource.key(&target.namespace, "")
    } else {
        format!("/registry/{}/", target.resource.key_prefix)
    }
}

/// LIST of a collection (JSON list or Table), with selectors, chunking
/// and resourceVersion semantics.
pub async fn list(api: &Api, target: &Target, ctx: &Ctx) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(target, ctx)?;
    let limit = ctx.query.int("limit")?.unwrap_or(0).max(0);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let rv_match = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let mut revision = 0;
    let mut start_after = None;
    if let Some(token) = ctx.query.get("continue").filter(|t| !t.is_empty()) {
        if !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (at, key) = decode_continue(token)?;
        revision = at;
        start_after = Some(key);
    } else {
        match rv_match {
            "" => {}
            "Exact" | "NotOlderThan" if !rv.is_empty() => {}
            "Exact" | "NotOlderThan" => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        }
        if rv_match == "Exact" {
            revision = parse_rv(rv)?;
            if revision == 0 {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        } else if !rv.is_empty() && rv != "0" {
            // NotOlderThan: the current state is never older.
            let wanted = parse_rv(rv)?;
            let current = api.objects.store().current_revision().await?;
            if wanted > current {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {wanted}, current: {current}"
                )));
            }
        }
    }

    let prefix = collection_prefix(target);
    // JSON lists are written item by item as they are read (a list of
    // 100,000 objects would otherwise hold them all as JSON values).
    let streaming = ctx.output == Output::Json;
    let mut items = Vec::new();
    let mut json_items: Vec<u8> = Vec::new();
    let mut matched = 0usize;
    let mut list_revision;
    let mut next_start;
    let mut more;
    let mut remaining;
    // Read pages until `limit` objects matched (kube's semantics with
    // selectors) or the collection ends.
    loop {
        let want = if limit == 0 { 0 } else { limit - matched };
        let page = api
            .objects
            .store()
            .list(
                &prefix,
                &berth_kv::ListOptions {
                    start_after: start_after.clone(),
                    revision,
                    limit: if want == 0 { 0 } else { want.max(16) },
                },
            )
            .await
            .map_err(|e| match e {
                berth_kv::Error::Compacted { .. } if ctx.query.get("continue").is_some() => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => other.into(),
            })?;
        list_revision = page.revision;
        revision = page.revision;
        more = page.more;
        remaining = page.remaining;
        next_start = None;
        for (i, kv) in page.items.iter().enumerate() {
            let mut obj = storage::decode(kv)?;
            if labels.matches(&obj) && fields.matches(&obj) {
                matched += 1;
                if streaming {
                    stamp(target, &mut obj);
                    if !json_items.is_empty() {
                        json_items.push(b',');
                    }
                    serde_json::to_writer(&mut json_items, &obj)
                        .map_err(|e| ApiError::internal(format!("encode: {e}")))?;
                } else {
                    items.push(obj);
                }
                if limit != 0 && matched >= limit {
                    let left = page.items.len() - i - 1;
                    if left > 0 {
                        more = true;
                        remaining += i64::try_from(left).unwrap_or(0);
                    }
                    next_start = Some(kv.key.clone());
                    break;
                }
            }
        }
        if limit == 0 || matched >= limit || !page.more {
            if next_start.is_none()
                && let Some(last) = page.items.last()
            {
                next_start = Some(last.key.clone());
            }
            break;
        }
        start_after = page.items.last().map(|kv| kv.key.clone());
    }
    for item in &mut items {
        stamp(target, item);
    }
    let mut list_meta = Map::new();
    list_meta.insert(
        "resourceVersion".to_owned(),
        json!(list_revision.to_string()),
    );
    if limit != 0 && more {
        if let Some(start) = &next_start {
            list_meta.insert(
                "continue".to_owned(),
                json!(encode_continue(list_revision, start)),
            );
        }
        if labels.is_empty() && fields.is_empty() {
            list_meta.insert("remainingItemCount".to_owned(), json!(remaining));
        }
    }
    let body = match ctx.output {
        Output::Table => {
            let mut table = table::table(api, &target.resource, &items, "", true);
            table["metadata"] = Value::Object(list_meta);
            table
        }
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        Output::Json => {
            let head = json!({
                "kind": list_kind(&target.resource.kind),
                "apiVersion": target.resource.api_version(),
                "metadata": list_meta,
            });
            let mut body = serde_json::to_vec(&head)
                .map_err(|e| ApiError::internal(format!("encode: {e}")))?;
            // `{…}` → `{…,"items":[…]}`
            body.pop();
            body.reserve(json_items.len() + 12);
            body.extend_from_slice(b",\"items\":[");
            body.append(&mut json_items);
            body.extend_from_slice(b"]}");
            return Ok(super::respond_raw(200, body, &ctx.warnings));
        }
    };
    Ok(respond(200, &body, &ctx.warnings))
}

/// Checks apiVersion and kind in a body against the URL, filling them in
/// when absent (the Python client leaves them out).
pub fn check_kind(
    target: &Target,
    obj: &mut Value,
    expect_kind: &str,
    expect_version: &str,
) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/apply-patch+yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json",
        ));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".to_owned(), json!(expect_version));
        }
        Some(v) if v == expect_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expect_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".to_owned(), json!(expect_kind));
        }
        Some(k) if k == expect_kind => {}
        Some(k) => {
            let _ = target;
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({expect_kind})"
            )));
        }
    }
    Ok(())
}

/// Checks the body's namespace against the URL's (filling it in).
fn check_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let meta = meta::metadata_mut(obj);
    if !target.resource.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".to_owned(), json!(target.namespace));
            Ok(())
        }
        Some(ns) if ns == target.namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// NamespaceLifecycle: a namespaced object may be created only in a
/// namespace that exists and is not terminating.
async fn check_namespace_lifecycle(api: &Api, target: &Target) -> Result<(), ApiError> {
    if !target.resource.namespaced {
        return Ok(());
    }
    let key = format!("/registry/namespaces/{}", target.namespace);
    match api.objects.get_key(&key).await? {
        None => Err(ApiError::not_found("", "namespaces", &target.namespace)),
        Some((ns, _)) if !meta::meta_str(&ns, "deletionTimestamp").is_empty() => {
            Err(ApiError::forbidden_on(
                &target.resource.group,
                &target.resource.plural,
                &target.name,
                &format!(
                    "unable to create new content in namespace {} because it is being terminated",
                    target.namespace
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// POST to a collection.
pub async fn create(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut obj = body_json(body, &ctx.headers)?;
    let kind = target.resource.kind.clone();
    check_kind(target, &mut obj, &kind, &target.resource.api_version())?;
    let (obj, _) = create_object(api, target, ctx, obj).await?;
    render_one(api, target, ctx, obj, 201)
}

/// The create path shared by POST and server-side apply on a missing
/// object: admission, defaulting, validation, storing. Returns the stored
/// object (or what would be stored under dryRun) and its name.
pub async fn create_object(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    obj: Value,
) -> Result<(Value, String), ApiError> {
    let resource = &target.resource;
    let mut obj = crate::conversion::to_storage(resource, obj);
    check_namespace(target, &mut obj)?;
    let dry_run = ctx.query.dry_run()?;
    {
        let meta = meta::metadata_mut(&mut obj);
        meta::clear_server_fields(meta);
    }
    // A built-in kind with a status is created with one, if only `{}`
    // (kube's structs always serialize it; clients read `.status.x` at once).
    let builtin = matches!(
        resource.group.as_str(),
        "" | "apps" | "batch" | "autoscaling" | "policy"
    ) || resource.group.ends_with(".k8s.io");
    if builtin
        && resource.has_status()
        && let Some(o) = obj.as_object_mut()
        && !o.get("status").is_some_and(Value::is_object)
    {
        o.insert("status".to_owned(), json!({}));
    }
    let name = meta::meta_str(&obj, "name").to_owned();
    let generate = meta::meta_str(&obj, "generateName").to_owned();
    if name.is_empty() && generate.is_empty() {
        return Err(ApiError::invalid(
            &resource.group,
            &resource.kind,
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )],
        ));
    }
    let mut scoped = target.clone();
    scoped.name = name.clone();
    check_namespace_lifecycle(api, &scoped).await?;
    let validation = FieldValidation::from_query(&ctx.query)?;
    // A generated name is retried a few times on collisions.
    for _ in 0..8 {
        let mut candidate = obj.clone();
        if name.is_empty() {
            let generated = format!("{generate}{}", meta::random_suffix());
            meta::metadata_mut(&mut candidate).insert("name".to_owned(), json!(generated));
        }
        let candidate_name = meta::meta_str(&candidate, "name").to_owned();
        {
            let meta = meta::metadata_mut(&mut candidate);
            meta.insert("uid".to_owned(), json!(meta::new_uid()));
            meta.insert("creationTimestamp".to_owned(), json!(meta::now()));
        }
        let warnings = kinds::prepare(api, resource, Op::Create, None, &mut candidate, validation)?;
        ctx.add_warnings(warnings);
        // Admission plugins (crate::admission): mutating, then validating.
        let mut admitted = target.clone();
        admitted.name = candidate_name.clone();
        let warnings =
            crate::admission::admit(api, &admitted, Op::Create, None, &mut candidate, dry_run)
                .await?;
        ctx.add_warnings(warnings);
        // Service cluster IPs and node ports (crate::alloc).
        let reserved = if crate::alloc::applies(&admitted) {
            let reserved = crate::alloc::reserve(api, None, &candidate, dry_run).await?;
            if let Err(e) = crate::alloc::assign(None, &mut candidate, &reserved) {
                reserved.release(api).await;
                return Err(e);
            }
            Some(reserved)
        } else {
            None
        };
        super::patch::record_manager(
            &named_for_manager(target, &candidate),
            None,
            &mut candidate,
            ctx,
            "Update",
        );
        let mut named = target.clone();
        named.name = candidate_name.clone();
        if dry_run {
            // The name must still be free.
            if api.objects.get_key(&named.key()).await?.is_some() {
                return Err(ApiError::already_exists(
                    &resource.group,
                    &resource.plural,
                    &candidate_name,
                ));
            }
            return Ok((candidate, candidate_name));
        }
        let stored = if resource.group.is_empty() && resource.plural == "events"
            || resource.group == "events.k8s.io"
        {
            api.objects
                .create(&named, &candidate, Some(api.event_ttl))
                .await
        } else {
            api.objects.create(&named, &candidate, None).await
        };
        if stored.is_err()
            && let Some(reserved) = &reserved
        {
            reserved.release(api).await;
        }
        match stored {
            Ok(mut stored) => {
                stamp(&named, &mut stored);
                api.after_write(resource, &stored).await;
                return Ok((stored, candidate_name));
            }
            Err(e) if e.reason == "AlreadyExists" && name.is_empty() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::already_exists(
        &resource.group,
        &resource.plural,
        &generate,
    ))
}

/// PUT of an object or its status.
pub async fn replace(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut obj = body_json(body, &ctx.headers)?;
    let kind = target.resource.kind.clone();
    check_kind(target, &mut obj, &kind, &target.resource.api_version())?;
    check_namespace(target, &mut obj)?;
    let body_name = meta::meta_str(&obj, "name");
    if body_name != target.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            target.name
        )));
    }
    let precondition = match meta::meta_str(&obj, "resourceVersion") {
        "" => None,
        rv => Some(parse_rv(rv)?),
    };
    let (stored, _) = update_object(api, target, ctx, precondition, move |current| {
        super::ephemeral::update_keeps_them(target, current, &obj)?;
        Ok(obj.clone())
    })
    .await?;
    render_one(api, target, ctx, stored, 200)
}

/// The update path shared by PUT and PATCH: `make` builds the new object
/// from the current one; admission, defaulting, validation and the
/// subresource rules follow. Returns the stored object and whether the
/// object is gone (a finalizer-held deletion completed).
pub async fn update_object<F>(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    precondition: Option<i64>,
    mut make: F,
) -> Result<(Value, bool), ApiError>
where
    F: FnMut(&Value) -> Result<Value, ApiError>,
{
    let resource = target.resource.clone();
    let dry_run = ctx.query.dry_run()?;
    let validation = FieldValidation::from_query(&ctx.query)?;
    let mut dry_result = None;
    let mut warnings_out = Vec::new();
    // Admission plugins (crate::admission): their data is loaded before
    // the synchronous read-modify-write.
    let admission = crate::admission::prepare_update(api, target).await?;
    // Service cluster IPs and node ports (crate::alloc): reserved from a
    // preview of the write, assigned inside it.
    let allocating = crate::alloc::applies(target);
    let reserved = if allocating {
        let (current, _) = api.objects.get(target).await?;
        match build_update(api, target, &current, &mut make, validation) {
            Ok((new, _)) => crate::alloc::reserve(api, Some(&current), &new, dry_run).await?,
            // The write itself reports it.
            Err(_) => crate::alloc::Reserved::default(),
        }
    } else {
        crate::alloc::Reserved::default()
    };
    let mut allocated: Option<(Value, crate::alloc::service::Held)> = None;
    let result = api
        .objects
        .update(target, precondition, None, |current| {
            let (mut new, warnings) = build_update(api, target, &current, &mut make, validation)?;
            warnings_out = warnings;
            warnings_out.extend(admission.admit(target, &current, &mut new, dry_run)?);
            if allocating {
                let held = crate::alloc::assign(Some(&current), &mut new, &reserved)?;
                allocated = Some((current.clone(), held));
            }
            super::patch::record_manager(target, Some(&current), &mut new, ctx, "Update");
            if same_object(&current, &new) {
                return Ok(Change::Keep);
            }
            let deleting = !meta::meta_str(&new, "deletionTimestamp").is_empty();
            let finalizers_left = meta::metadata(&new)
                .get("finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            let graceful = new
                .get("metadata")
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .is_some_and(|g| g > 0);
            if dry_run {
                dry_result = Some(new);
                return Ok(Change::Keep);
            }
            if deleting && !finalizers_left && !graceful && resource.plural != "namespaces" {
                return Ok(Change::Delete);
            }
            Ok(Change::Put(new))
        })
        .await;
    ctx.add_warnings(warnings_out);
    let (mut stored, gone) = match result {
        Ok(r) => r,
        Err(e) => {
            reserved.release(api).await;
            return Err(e);
        }
    };
    if allocating && dry_result.is_none() {
        match &allocated {
            Some((old, _)) if gone => {
                reserved.release(api).await;
                crate::alloc::release_held(api, old).await;
            }
            Some((old, held)) => crate::alloc::finish(api, &reserved, Some(old), held).await,
            None => reserved.release(api).await,
        }
    }
    if let Some(mut dry) = dry_result {
        stamp(target, &mut dry);
        return Ok((dry, false));
    }
    stamp(target, &mut stored);
    if !gone {
        api.after_write(&resource, &stored).await;
    }
    Ok((stored, gone))
}

/// The new object of an update before admission: `make` applied to the
/// current object (as served), kind and namespace checked, server fields
/// carried, the resourceVersion precondition, defaulting and validation.
fn build_update<F>(
    api: &Api,
    target: &Target,
    current: &Value,
    make: &mut F,
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError>
where
    F: FnMut(&Value) -> Result<Value, ApiError>,
{
    let resource = &target.resource;
    let served = crate::conversion::from_storage(resource, current.clone());
    let mut new = make(&served)?;
    let kind = resource.kind.clone();
    check_kind(target, &mut new, &kind, &resource.api_version())?;
    let mut new = crate::conversion::to_storage(resource, new);
    check_namespace(target, &mut new)?;
    merge_server_fields(
        current,
        &mut new,
        &target.subresource,
        resource.has_status(),
    );
    if let Some(rv) = new
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        && !rv.is_empty()
    {
        let expected = parse_rv(rv)?;
        let current_rv = parse_rv(meta::meta_str(current, "resourceVersion"))?;
        if expected != current_rv {
            return Err(ApiError::stale(
                &resource.group,
                &resource.plural,
                &target.name,
            ));
        }
    }
    let warnings = kinds::prepare(
        api,
        resource,
        Op::Update,
        Some(current),
        &mut new,
        validation,
    )?;
    Ok((new, warnings))
}

fn named_for_manager(target: &Target, _obj: &Value) -> Target {
    target.clone()
}

/// Whether two versions differ only in resourceVersion.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        let meta = meta::metadata_mut(&mut v);
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        v
    };
    strip(a) == strip(b)
}

/// Carries the server-owned fields from the current object into an
/// update: uid, creationTimestamp, deletion fields, generation, and the
/// part the request's scope does not own (status for the main resource,
/// everything but status for `status`).
fn merge_server_fields(current: &Value, new: &mut Value, subresource: &str, has_status: bool) {
    let cur_meta = meta::metadata(current).clone();
    {
        let meta = meta::metadata_mut(new);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match cur_meta.get(field) {
                Some(v) => {
                    meta.insert(field.to_owned(), v.clone());
                }
                None => {
                    meta.remove(field);
                }
            }
        }
        // A finalizer may not be added once deletion started (kube
        // forbids it); removing is how deletion completes.
        if cur_meta.contains_key("deletionTimestamp") {
            let current_finalizers: Vec<Value> = cur_meta
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(list) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
                list.retain(|f| current_finalizers.contains(f));
            }
        }
    }
    let Some(map) = new.as_object_mut() else {
        return;
    };
    match subresource {
        "status" => {
            // Only status changes; the rest is as it was.
            let status = map.remove("status");
            let meta = map.remove("metadata");
            *map = current.as_object().cloned().unwrap_or_default();
            match status {
                Some(s) => {
                    map.insert("status".to_owned(), s);
                }
                None => {
                    map.remove("status");
                }
            }
            if let Some(Value::Object(new_meta)) = meta {
                // Labels, annotations and finalizers may change through
                // status writes too (kube keeps metadata changes).
                let target_meta = map
                    .entry("metadata")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(std::mem::take)
                    .unwrap_or_default();
                let mut merged = target_meta;
                for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    match new_meta.get(field) {
                        Some(v) => {
                            merged.insert(field.to_owned(), v.clone());
                        }
                        None => {
                            merged.remove(field);
                        }
                    }
                }
                if let Some(rv) = new_meta.get("resourceVersion") {
                    merged.insert("resourceVersion".to_owned(), rv.clone());
                }
                if let Some(mf) = new_meta.get("managedFields") {
                    merged.insert("managedFields".to_owned(), mf.clone());
                }
                map.insert("metadata".to_owned(), Value::Object(merged));
            }
        }
        "" if has_status => match current.get("status") {
            Some(s) => {
                map.insert("status".to_owned(), s.clone());
            }
            None => {
                map.remove("status");
            }
        },
        _ => {}
    }
}

/// Delete options from the body or the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `propagationPolicy`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

fn delete_options(ctx: &Ctx, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        grace: ctx.query.int("gracePeriodSeconds")?,
        propagation: ctx.query.get("propagationPolicy").map(str::to_owned),
        ..DeleteOptions::default()
    };
    if ctx.query.get("orphanDependents") == Some("true") && options.propagation.is_none() {
        options.propagation = Some("Orphan".to_owned());
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let value: Value = if super::is_protobuf(&ctx.headers) {
            super::protobuf_body(body)?
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body of the request is not valid DeleteOptions JSON: {e}"
                ))
            })?
        };
        if let Some(g) = value.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            options.grace =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = value.get("propagationPolicy").and_then(Value::as_str) {
            options.propagation = Some(p.to_owned());
        }
        if value.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && options.propagation.is_none()
        {
            options.propagation = Some("Orphan".to_owned());
        }
        if let Some(pre) = value.get("preconditions") {
            options.uid = pre.get("uid").and_then(Value::as_str).map(str::to_owned);
            options.resource_version = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if let Some(dry) = value.get("dryRun").and_then(Value::as_array)
            && dry.iter().any(|d| d.as_str() != Some("All"))
        {
            return Err(ApiError::bad_request(
                "Invalid dry run value: supported values: \"All\"",
            ));
        }
    }
    if let Some(p) = &options.propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![Cause::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        ));
    }
    if options.grace.is_some_and(|g| g < 0) {
        options.grace = Some(1);
    }
    Ok(options)
}

/// DELETE of an object.
pub async fn delete(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let options = delete_options(ctx, body)?;
    let dry_run = ctx.query.dry_run()? || body_dry_run(body);
    let (obj, gone) = delete_object(api, target, &options, dry_run).await?;
    let _ = gone;
    render_one(api, target, ctx, obj, 200)
}

fn body_dry_run(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("dryRun")
                .and_then(Value::as_array)
                .map(|a| !a.is_empty())
        })
        .unwrap_or(false)
}

/// The deletion path: preconditions, finalizers and propagation, graceful
/// pod deletion, namespaces' Terminating phase.
pub async fn delete_object(
    api: &Api,
    target: &Target,
    options: &DeleteOptions,
    dry_run: bool,
) -> Result<(Value, bool), ApiError> {
    let resource = target.resource.clone();
    let mut dry_result = None;
    let (mut obj, gone) = api
        .objects
        .update(target, None, None, |current| {
            let meta = meta::metadata(&current);
            if let Some(uid) = &options.uid
                && meta.get("uid").and_then(Value::as_str) != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.plural,
                    &target.name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta.get("uid").and_then(Value::as_str).unwrap_or("")
                    ),
                ));
            }
            if let Some(rv) = &options.resource_version
                && meta.get("resourceVersion").and_then(Value::as_str) != Some(rv.as_str())
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.plural,
                    &target.name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta.get("resourceVersion").and_then(Value::as_str).unwrap_or("")
                    ),
                ));
            }
            let mut new = current.clone();
            let already = !meta::meta_str(&current, "deletionTimestamp").is_empty();
            let mut finalizers: Vec<Value> = meta.get("finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
            let add = match options.propagation.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(f) = add
                && !already
                && !finalizers.iter().any(|x| x.as_str() == Some(f))
            {
                finalizers.push(json!(f));
            }
            // Pods on a node end gracefully: the node agent stops them and
            // deletes the object with grace 0.
            let on_node = resource.group.is_empty()
                && resource.plural == "pods"
                && !current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty()
                && !matches!(current.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
            let grace = if on_node {
                options.grace.unwrap_or_else(|| {
                    current
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                })
            } else {
                0
            };
            let namespace = resource.group.is_empty() && resource.plural == "namespaces";
            if finalizers.is_empty() && grace == 0 && !namespace {
                if dry_run {
                    dry_result = Some(current);
                    return Ok(Change::Keep);
                }
                return Ok(Change::Delete);
            }
            if already {
                // A second delete may shorten a pod's grace period.
                let current_grace = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
                if on_node && grace < current_grace {
                    let m = meta::metadata_mut(&mut new);
                    m.insert("deletionGracePeriodSeconds".to_owned(), json!(grace));
                    if grace == 0 && finalizers.is_empty() {
                        return Ok(Change::Delete);
                    }
                    return Ok(Change::Put(new));
                }
                return Ok(Change::Keep);
            }
            let (secs, _) = meta::unix_now();
            let m = meta::metadata_mut(&mut new);
            m.insert(
                "deletionTimestamp".to_owned(),
                json!(berth_types::time::format_rfc3339_seconds(secs + grace)),
            );
            m.insert("deletionGracePeriodSeconds".to_owned(), json!(grace));
            if !finalizers.is_empty() {
                m.insert("finalizers".to_owned(), Value::Array(finalizers));
            }
            if namespace {
                new["status"]["phase"] = json!("Terminating");
            }
            if dry_run {
                dry_result = Some(new);
                return Ok(Change::Keep);
            }
            Ok(Change::Put(new))
        })
        .await?;
    if let Some(mut dry) = dry_result {
        stamp(target, &mut dry);
        return Ok((dry, false));
    }
    stamp(target, &mut obj);
    if gone {
        api.after_delete(&resource, &obj).await;
    } else {
        api.after_write(&resource, &obj).await;
    }
    Ok((obj, gone))
}

/// DELETE of a collection (`deletecollection`), with selectors.
pub async fn delete_collection(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let options = delete_options(ctx, body)?;
    let dry_run = ctx.query.dry_run()?;
    let (labels, fields) = selectors(target, ctx)?;
    let (items, revision) = api.objects.list_all(&collection_prefix(target), 0).await?;
    let mut deleted = Vec::new();
    for item in items {
        if !(labels.matches(&item) && fields.matches(&item)) {
            continue;
        }
        let mut one = target.clone();
        one.name = meta::meta_str(&item, "name").to_owned();
        one.namespace = meta::meta_str(&item, "namespace").to_owned();
        match delete_object(api, &one, &options, dry_run).await {
            Ok((obj, _)) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({
        "kind": list_kind(&target.resource.kind),
        "apiVersion": target.resource.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": deleted,
    });
    let _ = HeaderMap::new();
    Ok(respond(200, &body, &ctx.warnings))
}
