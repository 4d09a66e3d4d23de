//! PodSecurity admission: the Pod Security Standards (baseline and
//! restricted) chosen by namespace labels
//! `pod-security.kubernetes.io/<enforce|warn|audit>[-version]`.
//! Enforce refuses pods (403 `violates PodSecurity "restricted:latest":
//! …`); warn answers `Warning` headers; workload templates (Deployments,
//! Jobs, …) are only warned about, at both levels. Audit has no audit
//! log to write to and is only validated.

use serde_json::{Map, Value};

use crate::api::Api;
use crate::error::{ApiError, Cause};
use crate::meta;
use crate::resources::Resource;

/// The label prefix.
pub const PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standard level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No checks.
    Privileged,
    /// Known privilege escalations are refused.
    Baseline,
    /// Hardening best practices.
    Restricted,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level at a policy version (`None` = latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The minor version of `v1.<minor>`, `None` for `latest`.
    pub minor: Option<u32>,
}

impl LevelVersion {
    fn privileged() -> LevelVersion {
        LevelVersion {
            level: Level::Privileged,
            minor: None,
        }
    }

    /// kube's `restricted:latest` / `baseline:v1.30`.
    pub fn label(&self) -> String {
        match self.minor {
            None => format!("{}:latest", self.level.name()),
            Some(m) => format!("{}:v1.{m}", self.level.name()),
        }
    }

    /// The minor the checks are chosen by (versions past the server's
    /// are the server's).
    fn effective_minor(&self) -> u32 {
        let latest = crate::api::KUBE_MINOR.parse().unwrap_or(33);
        self.minor.map_or(latest, |m| m.min(latest))
    }
}

/// A namespace's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Refuses pods.
    pub enforce: LevelVersion,
    /// Warns.
    pub warn: LevelVersion,
    /// Audit annotations (not written: berth keeps no audit log).
    pub audit: LevelVersion,
}

fn parse_level(value: &str) -> Result<Level, String> {
    match value {
        "privileged" => Ok(Level::Privileged),
        "baseline" => Ok(Level::Baseline),
        "restricted" => Ok(Level::Restricted),
        _ => Err("must be one of privileged, baseline, restricted".to_owned()),
    }
}

fn parse_version(value: &str) -> Result<Option<u32>, String> {
    let bad = || "must be \"latest\" or \"v1.x\"".to_owned();
    if value == "latest" {
        return Ok(None);
    }
    let minor = value.strip_prefix("v1.").ok_or_else(bad)?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) || minor.len() > 4 {
        return Err(bad());
    }
    minor.parse().map(Some).map_err(|_| bad())
}

/// The policy the labels choose, with the label errors. An invalid
/// enforce level enforces `restricted` (kube's safe default).
fn parse_policy(labels: Option<&Map<String, Value>>) -> (Policy, Vec<Cause>) {
    let mut causes = Vec::new();
    let mut mode = |mode: &str| -> LevelVersion {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        let level_key = format!("{PREFIX}{mode}");
        let version_key = format!("{PREFIX}{mode}-version");
        let mut lv = LevelVersion::privileged();
        if let Some(v) = get(&level_key) {
            match parse_level(v) {
                Ok(l) => lv.level = l,
                Err(why) => {
                    causes.push(Cause::invalid(
                        format!("metadata.labels[{level_key}]"),
                        &Value::String(v.to_owned()),
                        &why,
                    ));
                    lv.level = if mode == "enforce" {
                        Level::Restricted
                    } else {
                        Level::Privileged
                    };
                }
            }
        }
        if let Some(v) = get(&version_key) {
            match parse_version(v) {
                Ok(m) => lv.minor = m,
                Err(why) => causes.push(Cause::invalid(
                    format!("metadata.labels[{version_key}]"),
                    &Value::String(v.to_owned()),
                    &why,
                )),
            }
        }
        lv
    };
    let policy = Policy {
        enforce: mode("enforce"),
        warn: mode("warn"),
        audit: mode("audit"),
    };
    (policy, causes)
}

/// The policy of a namespace object.
pub fn policy_of(namespace: &Value) -> Policy {
    parse_policy(meta::labels(namespace)).0
}

/// The policy of namespace `ns` (privileged when it has no labels).
pub async fn namespace_policy(api: &Api, ns: &str) -> Result<Policy, ApiError> {
    let key = format!("/registry/namespaces/{ns}");
    Ok(match api.objects.get_key(&key).await? {
        Some((obj, _)) => policy_of(&obj),
        None => parse_policy(None).0,
    })
}

/// Refuses a namespace whose PodSecurity labels are invalid (422, with
/// kube's `namespaces "x" is invalid: …` text).
pub fn validate_namespace(obj: &Value) -> Result<(), ApiError> {
    let (_, causes) = parse_policy(meta::labels(obj));
    if causes.is_empty() {
        return Ok(());
    }
    let name = meta::meta_str(obj, "name").to_owned();
    let mut error = ApiError::invalid("", "Namespace", &name, causes.clone());
    let texts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    error.message = format!(
        "namespaces \"{name}\" is invalid: {}",
        super::aggregate(&texts)
    );
    Err(error)
}

/// One failed check: kube's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `allowPrivilegeEscalation != false`
    pub reason: String,
    /// `container "main" must set securityContext.allowPrivilegeEscalation=false`
    pub detail: String,
}

fn v(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 { one } else { many }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn sorted_set(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

/// The containers a check visits: init, regular, ephemeral.
fn all_containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec.get(*l).and_then(Value::as_array).into_iter().flatten())
        .collect()
}

fn name(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn sc<'a>(c: &'a Value, field: &str) -> Option<&'a Value> {
    c.get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
}

fn str_at<'a>(v: Option<&'a Value>, field: &str) -> &'a str {
    v.and_then(|v| v.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn flag(spec: &Value, field: &str) -> bool {
    spec.get(field).and_then(Value::as_bool).unwrap_or(false)
}

// ---- baseline ----

fn app_armor(meta: &Map<String, Value>, spec: &Value) -> Option<Violation> {
    let allowed = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut setters = Vec::new();
    let mut values = Vec::new();
    if let Some(p) = sc(spec, "appArmorProfile") {
        let t = str_at(Some(p), "type");
        if !allowed(t) {
            setters.push("pod".to_owned());
            values.push(t.to_owned());
        }
    }
    let mut bad = Vec::new();
    for c in all_containers(spec) {
        if let Some(p) = sc(c, "appArmorProfile") {
            let t = str_at(Some(p), "type");
            if !allowed(t) {
                bad.push(name(c));
                values.push(t.to_owned());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut values = sorted_set(values);
    let mut annotations: Vec<String> = meta
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            let ok = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            (k.starts_with("container.apparmor.security.beta.kubernetes.io/") && !ok)
                .then(|| format!("{k}={}", quote(v)))
        })
        .collect();
    annotations.sort();
    if !annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    v(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

fn host_namespaces(spec: &Value) -> Option<Violation> {
    let used: Vec<&str> = ["hostIPC", "hostNetwork", "hostPID"]
        .into_iter()
        .filter(|f| flag(spec, f))
        .collect();
    (!used.is_empty()).then(|| Violation {
        reason: "host namespaces".to_owned(),
        detail: used.join(", "),
    })
}

fn host_ports(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in all_containers(spec) {
        let mut uses = false;
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp != 0 {
                uses = true;
                ports.push(hp.to_string());
            }
        }
        if uses {
            bad.push(name(c));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports = sorted_set(ports);
    v(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = all_containers(spec)
        .into_iter()
        .filter(|c| sc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged".to_owned(),
        detail: format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    })
}

fn proc_mount(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut kinds = Vec::new();
    for c in all_containers(spec) {
        if let Some(p) = sc(c, "procMount").and_then(Value::as_str)
            && p != "Default"
        {
            bad.push(name(c));
            kinds.push(p.to_owned());
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "procMount".to_owned(),
        detail: format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&sorted_set(kinds))
        ),
    })
}

fn se_linux(spec: &Value) -> Option<Violation> {
    let mut types = Vec::new();
    let mut user = false;
    let mut role = false;
    let mut valid = |o: &Value| {
        let mut ok = true;
        let t = str_at(Some(o), "type");
        if !matches!(
            t,
            "" | "container_t" | "container_init_t" | "container_kvm_t"
        ) {
            ok = false;
            types.push(t.to_owned());
        }
        if !str_at(Some(o), "user").is_empty() {
            ok = false;
            user = true;
        }
        if !str_at(Some(o), "role").is_empty() {
            ok = false;
            role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(o) = sc(spec, "seLinuxOptions")
        && !valid(o)
    {
        setters.push("pod".to_owned());
    }
    let mut bad = Vec::new();
    for c in all_containers(spec) {
        if let Some(o) = sc(c, "seLinuxOptions")
            && !valid(o)
        {
            bad.push(name(c));
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let types = sorted_set(types);
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_owned());
    }
    if role {
        data.push("role may not be set".to_owned());
    }
    v(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn sysctls(spec: &Value, minor: u32) -> Option<Violation> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if minor >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if minor >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let bad: Vec<&str> = sc(spec, "sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| s.get("name").and_then(Value::as_str).unwrap_or(""))
        .filter(|n| !allowed.contains(n))
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden sysctls".to_owned(),
        detail: bad.join(", "),
    })
}

fn host_process(spec: &Value) -> Option<Violation> {
    let is_host = |s: Option<&Value>| {
        s.and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mut setters = Vec::new();
    if is_host(sc(spec, "windowsOptions")) {
        setters.push("pod".to_owned());
    }
    let bad: Vec<String> = all_containers(spec)
        .into_iter()
        .filter(|c| is_host(sc(c, "windowsOptions")))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "hostProcess".to_owned(),
        detail: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    })
}

fn capabilities_baseline(spec: &Value) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut bad = Vec::new();
    let mut caps = Vec::new();
    for c in all_containers(spec) {
        let added: Vec<String> = sc(c, "capabilities")
            .and_then(|k| k.get("add"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|a| !ALLOWED.contains(a))
            .map(str::to_owned)
            .collect();
        if !added.is_empty() {
            bad.push(name(c));
            caps.extend(added);
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "non-default capabilities".to_owned(),
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&sorted_set(caps))
        ),
    })
}

fn host_path_volumes(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|vol| vol.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes".to_owned(),
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn seccomp_valid(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn seccomp_annotations(meta: &Map<String, Value>, spec: &Value) -> Option<Violation> {
    let annotations = meta.get("annotations").and_then(Value::as_object);
    let get = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    let ok =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut bad = Vec::new();
    let pod_key = "seccomp.security.alpha.kubernetes.io/pod";
    if let Some(val) = get(pod_key)
        && !ok(val)
    {
        bad.push(format!("{pod_key}={}", quote(val)));
    }
    for c in all_containers(spec) {
        let key = format!("container.seccomp.security.alpha.kubernetes.io/{}", name(c));
        if let Some(val) = get(&key)
            && !ok(val)
        {
            bad.push(format!("{key}={}", quote(val)));
        }
    }
    let bad = sorted_set(bad);
    (!bad.is_empty()).then(|| Violation {
        reason: "seccompProfile".to_owned(),
        detail: format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", bad.len()),
            bad.join(", ")
        ),
    })
}

/// The seccomp check; `required` is the restricted form (a profile must
/// be set).
fn seccomp(spec: &Value, required: bool) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = Vec::new();
    let mut pod_set = false;
    if let Some(p) = sc(spec, "seccompProfile") {
        let t = str_at(Some(p), "type");
        if seccomp_valid(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_owned());
            values.push(t.to_owned());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in all_containers(spec) {
        match sc(c, "seccompProfile") {
            Some(p) => {
                let t = str_at(Some(p), "type");
                if !seccomp_valid(t) {
                    explicit.push(name(c));
                    values.push(t.to_owned());
                }
            }
            None if !pod_set => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return v(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&sorted_set(values))
            ),
        );
    }
    if required && !implicit.is_empty() {
        return v(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

// ---- restricted ----

fn allow_privilege_escalation(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = all_containers(spec)
        .into_iter()
        .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false".to_owned(),
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    })
}

fn capabilities_restricted(spec: &Value) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = Vec::new();
    for c in all_containers(spec) {
        let Some(k) = sc(c, "capabilities") else {
            missing_drop.push(name(c));
            continue;
        };
        let list = |f: &str| -> Vec<String> {
            k.get(f)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        if !list("drop").iter().any(|d| d == "ALL") {
            missing_drop.push(name(c));
        }
        let bad: Vec<String> = list("add")
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !bad.is_empty() {
            adding.push(name(c));
            caps.extend(bad);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted_set(caps))
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities".to_owned(),
        detail: details.join("; "),
    })
}

fn restricted_volumes(spec: &Value) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    let bad: Vec<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|vol| {
            !ALLOWED
                .iter()
                .any(|k| vol.get(*k).is_some_and(|x| !x.is_null()))
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    // Go's %q of a string slice: ["a" "b"].
    let list = sorted_set(bad)
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(" ");
    v(
        "restricted volume types",
        format!("volumes [{list}] have restricted types"),
    )
}

fn run_as_non_root(spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut pod_true = false;
    match sc(spec, "runAsNonRoot").and_then(Value::as_bool) {
        Some(false) => setters.push("pod".to_owned()),
        Some(true) => pod_true = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in all_containers(spec) {
        match sc(c, "runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if !pod_true => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return v(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return v(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

fn run_as_user(spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if sc(spec, "runAsUser").and_then(Value::as_i64) == Some(0) {
        setters.push("pod".to_owned());
    }
    let bad: Vec<String> = all_containers(spec)
        .into_iter()
        .filter(|c| sc(c, "runAsUser").and_then(Value::as_i64) == Some(0))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "runAsUser=0".to_owned(),
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
    })
}

/// Evaluates a pod (metadata and spec) at a level and version; the
/// violations come in kube's order.
pub fn evaluate(lv: &LevelVersion, meta: &Map<String, Value>, spec: &Value) -> Vec<Violation> {
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let minor = lv.effective_minor();
    let mut out: Vec<Option<Violation>> = vec![
        app_armor(meta, spec),
        host_namespaces(spec),
        host_ports(spec),
        privileged(spec),
        proc_mount(spec),
        se_linux(spec),
        sysctls(spec, minor),
        host_process(spec),
    ];
    if lv.level == Level::Baseline {
        out.push(capabilities_baseline(spec));
        out.push(host_path_volumes(spec));
        out.push(if minor >= 19 {
            seccomp(spec, false)
        } else {
            seccomp_annotations(meta, spec)
        });
    } else {
        if minor >= 8 {
            out.push(allow_privilege_escalation(spec));
        }
        out.push(if minor >= 22 {
            capabilities_restricted(spec)
        } else {
            capabilities_baseline(spec)
        });
        out.push(restricted_volumes(spec));
        out.push(run_as_non_root(spec));
        if minor >= 23 {
            out.push(run_as_user(spec));
        }
        out.push(if minor >= 19 {
            seccomp(spec, true)
        } else {
            seccomp_annotations(meta, spec)
        });
    }
    out.into_iter().flatten().collect()
}

/// kube's `reason (detail), reason (detail)`.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|x| {
            if x.detail.is_empty() {
                x.reason.clone()
            } else {
                format!("{} ({})", x.reason, x.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn pod_parts(obj: &Value) -> (Map<String, Value>, Value) {
    (
        meta::metadata(obj).clone(),
        obj.get("spec").cloned().unwrap_or(Value::Null),
    )
}

/// Admission of a pod: refused when it violates the enforce level;
/// warnings for the warn level.
pub fn admit_pod(policy: &Policy, pod: &Value) -> Result<Vec<String>, ApiError> {
    let (meta, spec) = pod_parts(pod);
    let failed = evaluate(&policy.enforce, &meta, &spec);
    if !failed.is_empty() {
        return Err(ApiError::forbidden_on(
            "",
            "pods",
            meta::meta_str(pod, "name"),
            &format!(
                "violates PodSecurity {}: {}",
                quote(&policy.enforce.label()),
                describe(&failed)
            ),
        ));
    }
    let warned = evaluate(&policy.warn, &meta, &spec);
    if warned.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "would violate PodSecurity {}: {}",
        quote(&policy.warn.label()),
        describe(&warned)
    )])
}

/// Whether a resource carries a pod template PodSecurity looks at.
pub fn is_workload(resource: &Resource) -> bool {
    matches!(
        (resource.group.as_str(), resource.plural.as_str()),
        (
            "apps",
            "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        ) | ("batch", "jobs" | "cronjobs")
            | ("", "replicationcontrollers" | "podtemplates")
    )
}

/// The pod template of a workload object.
pub fn template<'a>(resource: &Resource, obj: &'a Value) -> Option<&'a Value> {
    if !is_workload(resource) {
        return None;
    }
    let pointer = match (resource.group.as_str(), resource.plural.as_str()) {
        ("batch", "cronjobs") => "/spec/jobTemplate/spec/template",
        ("", "podtemplates") => "/template",
        _ => "/spec/template",
    };
    obj.pointer(pointer).filter(|t| !t.is_null())
}

/// Warnings for a workload's pod template: the enforce level's and, when
/// different, the warn level's.
pub fn template_warnings(policy: &Policy, template: &Value) -> Vec<String> {
    let (meta, spec) = pod_parts(template);
    let mut warnings = Vec::new();
    let mut levels = vec![&policy.enforce];
    if policy.warn != policy.enforce {
        levels.push(&policy.warn);
    }
    for lv in levels {
        let failed = evaluate(lv, &meta, &spec);
        if !failed.is_empty() {
            warnings.push(format!(
                "would violate PodSecurity {}: {}",
                quote(&lv.label()),
                describe(&failed)
            ));
        }
    }
    warnings
}

/// Warnings when a namespace's enforce level changes: the existing pods
/// that would be refused, grouped by their failed checks.
pub fn namespace_warnings(old: &Value, new: &Value, pods: &[Value]) -> Vec<String> {
    let before = policy_of(old).enforce;
    let after = policy_of(new).enforce;
    if before == after || after.level == Level::Privileged {
        return Vec::new();
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for pod in pods {
        let (meta, spec) = pod_parts(pod);
        let failed = evaluate(&after, &meta, &spec);
        if failed.is_empty() {
            continue;
        }
        let reasons = failed
            .iter()
            .map(|x| x.reason.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let name = meta::meta_str(pod, "name").to_owned();
        match groups.iter_mut().find(|(r, _)| *r == reasons) {
            Some((_, names)) => names.push(name),
            None => groups.push((reasons, vec![name])),
        }
    }
    if groups.is_empty() {
        return Vec::new();
    }
    let mut warnings = vec![format!(
        "existing pods in namespace {} violate the new PodSecurity enforce level {}",
        quote(meta::meta_str(new, "name")),
        quote(&after.label())
    )];
    for (reasons, names) in groups {
        let first = names.first().cloned().unwrap_or_default();
        let who = match names.len() {
            0 | 1 => first,
            2 => format!("{first} (and 1 other pod)"),
            n => format!("{first} (and {} other pods)", n - 1),
        };
        warnings.push(format!("{who}: {reasons}"));
    }
    warnings
}
