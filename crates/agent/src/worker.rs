//! One pod's worker: brings what runs in line with the pod (sandbox,
//! volumes, init containers in order, containers with their restart
//! policy and back-off, probes, hooks), reports the pod's status, and on
//! deletion stops everything within the grace period, removes it and
//! tells the API server the pod is gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::sandbox::{Sandbox, SandboxState};
use berth_engine::{Engine, PodRuntime};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::watch;

use crate::env;
use crate::kubelet_metrics::WorkerOp;
use crate::names::{Attempt, Kind, PodKey};
use crate::probe::{self, Outcome, Tracker};
use crate::status::{self, AttemptState, Notes, Observed, PodFacts};
use crate::translate::{self, ContainerInputs};
use crate::volumes::{self, Ready};
use crate::{Shared, blocking};

/// Back-off of restarts and pulls: 10 s doubling to 5 min (the kubelet's).
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Probes {
    liveness: Option<Tracker>,
    readiness: Option<Tracker>,
    startup: Option<Tracker>,
    /// The attempt these trackers belong to.
    attempt_id: String,
}

/// A pod worker's memory (rebuilt from the engine after an agent restart).
pub(crate) struct Worker {
    shared: Arc<Shared>,
    key: PodKey,
    start_time: Option<Time>,
    /// container name → (not before, current delay)
    backoff: HashMap<String, (Instant, Duration)>,
    pull_backoff: HashMap<String, (Instant, Duration)>,
    waiting: HashMap<String, (String, String)>,
    probes: HashMap<String, Probes>,
    volumes: Option<BTreeMap<String, Ready>>,
    volumes_at: Option<Instant>,
    last_status: Option<serde_json::Value>,
    warned: HashSet<String>,
    failed: Option<(String, String)>,
    post_started: HashSet<String>,
    /// ephemeral container → the engine id of its target container
    ephemeral_targets: HashMap<String, String>,
    /// Evicted under node pressure: the kubelet's message
    /// (the DisruptionTarget condition's).
    evicted: Option<String>,
    /// When the worker first saw the pod.
    seen: Instant,
    /// Whether this worker made the pod's sandbox and has not yet seen the
    /// pod run (then `kubelet_pod_start_duration_seconds` is observed).
    starting: bool,
    /// Passed the node's admission (pressure) once.
    admitted: bool,
    /// A finished pod's volumes are gone.
    volumes_torn_down: bool,
    cache: Cache,
}

/// An attempt the worker knows of (what does not change once made).
#[derive(Clone)]
struct Known {
    attempt: Attempt,
    id: String,
    image: String,
    image_id: String,
    dir: PathBuf,
}

/// What the worker remembers between passes, so that a pass reads only
/// its own containers' state files: the sandbox (re-read every 10 s) and
/// the attempts it knows (found by a scan of the sandbox once).
#[derive(Default)]
struct Cache {
    sandbox: Option<(Sandbox, Instant)>,
    known: Option<Vec<Known>>,
}

/// How long a cached sandbox is trusted.
const SANDBOX_RECHECK: Duration = Duration::from_secs(10);
/// How often a worker looks at its containers without being woken.
const TICK: Duration = Duration::from_secs(1);

/// What the engine runs for the pod.
#[derive(Default)]
struct Running {
    sandbox: Option<Sandbox>,
    attempts: BTreeMap<String, Vec<AttemptState>>,
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, key: PodKey) -> Worker {
        Worker {
            shared,
            key,
            start_time: None,
            backoff: HashMap::new(),
            pull_backoff: HashMap::new(),
            waiting: HashMap::new(),
            probes: HashMap::new(),
            volumes: None,
            volumes_at: None,
            last_status: None,
            warned: HashSet::new(),
            failed: None,
            post_started: HashSet::new(),
            ephemeral_targets: HashMap::new(),
            evicted: None,
            seen: Instant::now(),
            starting: false,
            admitted: false,
            volumes_torn_down: false,
            cache: Cache::default(),
        }
    }

    /// Runs until the pod is gone from the API and from the node.
    pub(crate) async fn run(mut self, mut rx: watch::Receiver<Option<Pod>>) {
        let mut op = WorkerOp::Create;
        loop {
            let pod = rx.borrow_and_update().clone();
            let t0 = Instant::now();
            let done = match pod {
                None => {
                    self.tear_down(0).await;
                    true
                }
                Some(p) => match self.sync(&p).await {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::warn!(pod = %self.key.name, namespace = %self.key.namespace, error = %e, "pod sync failed");
                        false
                    }
                },
            };
            self.shared.metrics.pod_worker(op, t0.elapsed());
            if done {
                return;
            }
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        // the manager is gone: the agent stops; leave the pod running
                        return;
                    }
                    op = WorkerOp::Update;
                },
                () = tokio::time::sleep(TICK) => op = WorkerOp::Sync,
            }
        }
    }

    /// Runs engine work on a blocking thread, counted as the runtime
    /// operation `op` (`kubelet_runtime_operations_*`).
    async fn runtime<T: Send + 'static, E: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, String> {
        let t0 = Instant::now();
        let out = blocking(f).await;
        let ok = matches!(out, Ok(Ok(_)));
        self.shared.metrics.runtime_op(op, ok, t0.elapsed());
        out
    }

    async fn observe(&mut self) -> Running {
        let engine = self.shared.engine.clone();
        let name = self.key.sandbox_name();
        let cache = std::mem::take(&mut self.cache);
        let (run, cache) = blocking(move || {
            let mut cache = cache;
            let mut r = Running::default();
            let sb = match cache.sandbox.take() {
                Some((sb, at)) if at.elapsed() < SANDBOX_RECHECK => (sb, at),
                _ => match engine.sandbox(&name) {
                    Ok(sb) => (sb, Instant::now()),
                    Err(_) => return (r, Cache::default()),
                },
            };
            let known = match cache.known.take() {
                Some(k) => k,
                None => engine
                    .sandbox_containers(&sb.0.id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| {
                        Some(Known {
                            attempt: Attempt::from_labels(&c.record.labels)?,
                            id: c.record.id.clone(),
                            image: c.record.image.clone(),
                            image_id: c.record.image_id.clone(),
                            dir: c.dir.clone(),
                        })
                    })
                    .collect(),
            };
            let mut keep = Vec::with_capacity(known.len());
            for k in known {
                let Ok(st) = engine.container_state(&k.id) else {
                    continue; // removed
                };
                let message =
                    std::fs::read_to_string(termination_log_of(&k.dir)).unwrap_or_default();
                r.attempts
                    .entry(k.attempt.container.clone())
                    .or_default()
                    .push(AttemptState {
                        attempt: k.attempt.attempt,
                        kind: k.attempt.kind,
                        id: k.id.clone(),
                        status: st.status,
                        exit_code: st.exit_code,
                        started_at: st.started_at.clone(),
                        finished_at: st.finished_at.clone(),
                        oom_killed: st.oom_killed,
                        error: st.error.clone(),
                        image: k.image.clone(),
                        image_id: k.image_id.clone(),
                        message: message.chars().take(4096).collect(),
                    });
                keep.push(k);
            }
            for v in r.attempts.values_mut() {
                v.sort_by_key(|a| a.attempt);
            }
            r.sandbox = Some(sb.0.clone());
            cache.sandbox = Some(sb);
            cache.known = Some(keep);
            (r, cache)
        })
        .await
        .unwrap_or_default();
        self.cache = cache;
        run
    }

    async fn event(&mut self, pod: &Pod, type_warning: bool, reason: &str, note: String) {
        self.shared.event(pod, type_warning, reason, note).await;
    }

    /// One pass; `Ok(true)` when the worker is finished.
    async fn sync(&mut self, pod: &Pod) -> Result<bool, String> {
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
            self.kill_all(pod, grace).await;
            self.tear_down(grace).await;
            let pods: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.key.namespace);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.key.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match pods.delete(&self.key.name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(format!("delete the pod: {e}")),
            }
            return Ok(true);
        }
        let spec = pod.spec.clone().unwrap_or_default();
        if self.start_time.is_none() {
            self.start_time = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .or_else(|| Some(Time(k8s_openapi::jiff::Timestamp::now())));
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let evict = self
            .shared
            .evictions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key.uid);
        if let Some(message) = evict {
            self.evict(pod, message).await;
        }
        let mut run = self.observe().await;
        let failed_here = self
            .failed
            .as_ref()
            .is_some_and(|(reason, _)| reason == "Evicted");
        if phase == "Succeeded" || phase == "Failed" || failed_here {
            // finished: nothing runs any more; the sandbox gives its
            // address back, the volumes go (emptyDirs free their space)
            if let Some(sb) = &run.sandbox
                && sb.state == SandboxState::Ready
            {
                let engine = self.shared.engine.clone();
                let id = sb.id.clone();
                let _ = self
                    .runtime("stop_podsandbox", move || engine.stop_sandbox(&id, Some(0)))
                    .await;
                self.cache = Cache::default();
            }
            if !self.volumes_torn_down {
                let root = self.shared.cfg.root.clone();
                let uid = self.key.uid.clone();
                match blocking(move || volumes::tear_down_volumes(&root, &uid)).await {
                    Ok(Err(e)) => {
                        tracing::warn!(pod = %self.key.name, error = %e, "remove a finished pod's volumes")
                    }
                    _ => self.volumes_torn_down = true,
                }
                self.volumes = None;
            }
            if failed_here {
                let run = self.observe().await;
                self.report(pod, &run).await;
            }
            return Ok(false);
        }
        // the node's admission: a node under pressure refuses new pods
        if !self.admitted && run.sandbox.is_none() {
            let never_ran = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_none_or(|c| c.iter().all(|c| c.container_id.is_none()));
            let pressure = *self
                .shared
                .pressure
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let best_effort =
                translate::qos_class(&spec) == berth_engine::sandbox::QosClass::BestEffort;
            if never_ran && let Err(m) = crate::eviction::admit(pod, &pressure, best_effort) {
                self.event(pod, true, "Evicted", m.clone()).await;
                self.failed = Some(("Evicted".into(), format!("Pod was rejected: {m}")));
                self.report(pod, &run).await;
                return Ok(false);
            }
            self.admitted = true;
        }
        // volumes (again every 10 s: ConfigMap and Secret updates are swapped in)
        let refresh = self
            .volumes_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if refresh {
            match self.set_up_volumes(pod).await {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.volumes_at = Some(Instant::now());
                    self.warned.remove("FailedMount");
                }
                Err(e) => {
                    if self.volumes.is_none() {
                        if self.warned.insert("FailedMount".into()) {
                            self.event(pod, true, "FailedMount", e.clone()).await;
                        }
                        self.report(pod, &run).await;
                        return Ok(false);
                    }
                }
            }
        }
        // the sandbox
        let sandbox = match run.sandbox.clone() {
            Some(sb) if sb.state == SandboxState::Ready => sb,
            other => {
                if let Some(old) = other {
                    self.event(
                        pod,
                        false,
                        "SandboxChanged",
                        "Pod sandbox changed, it will be killed and re-created.".into(),
                    )
                    .await;
                    let engine = self.shared.engine.clone();
                    let id = old.id.clone();
                    let _ = blocking(move || engine.remove_sandbox(&id)).await;
                    self.cache = Cache::default();
                }
                let sspec =
                    translate::sandbox_spec(pod, &self.shared.cfg.node_name, &self.shared.dns)
                        .map_err(|e| e.0)?;
                let engine = self.shared.engine.clone();
                match self
                    .runtime("run_podsandbox", move || {
                        engine
                            .run_sandbox(&sspec)
                            .and_then(|id| engine.sandbox(&id))
                    })
                    .await
                {
                    Ok(Ok(sb)) => {
                        self.shared.metrics.pod_started();
                        self.starting = true;
                        self.warned.remove("FailedCreatePodSandBox");
                        self.cache = Cache {
                            sandbox: Some((sb.clone(), Instant::now())),
                            known: Some(Vec::new()),
                        };
                        run = Running {
                            sandbox: Some(sb.clone()),
                            attempts: BTreeMap::new(),
                        };
                        sb
                    }
                    Ok(Err(e)) => {
                        if self.warned.insert("FailedCreatePodSandBox".into()) {
                            self.event(
                                pod,
                                true,
                                "FailedCreatePodSandBox",
                                format!("Failed to create pod sandbox: {e}"),
                            )
                            .await;
                        }
                        self.report(pod, &run).await;
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        // init containers, in order
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let attempts = run.attempts.get(&c.name).cloned().unwrap_or_default();
            let last = attempts.last();
            if is_sidecar(c) {
                match last {
                    Some(a) if a.running() => {
                        self.probe_container(pod, c, a, &sandbox).await;
                        let started = self
                            .probes
                            .get(&c.name)
                            .and_then(|p| p.startup.as_ref())
                            .is_none_or(|t| t.ok);
                        if !started {
                            initialized = false;
                            break;
                        }
                    }
                    Some(a) if a.exited() => {
                        self.restart(pod, c, Kind::Init, a, &sandbox).await;
                        initialized = false;
                        break;
                    }
                    Some(_) => {
                        initialized = false;
                        break;
                    }
                    None => {
                        self.start(pod, c, Kind::Init, 0, &sandbox).await;
                        initialized = false;
                        break;
                    }
                }
                continue;
            }
            match last {
                Some(a) if a.exited() && a.exit_code == 0 && a.error.is_empty() => continue,
                Some(a) if a.exited() => {
                    if policy == "Never" {
                        self.failed = Some((String::new(), String::new()));
                    } else {
                        self.restart(pod, c, Kind::Init, a, &sandbox).await;
                    }
                    initialized = false;
                    break;
                }
                Some(_) => {
                    initialized = false;
                    break;
                }
                None => {
                    self.start(pod, c, Kind::Init, 0, &sandbox).await;
                    initialized = false;
                    break;
                }
            }
        }
        if initialized {
            for c in &spec.containers {
                let attempts = run.attempts.get(&c.name).cloned().unwrap_or_default();
                match attempts.last() {
                    None => self.start(pod, c, Kind::Container, 0, &sandbox).await,
                    Some(a) if a.running() => {
                        self.waiting.remove(&c.name);
                        self.probe_container(pod, c, a, &sandbox).await;
                    }
                    Some(a) if a.exited() => {
                        let again = match policy.as_str() {
                            "Always" => true,
                            "OnFailure" => a.exit_code != 0 || !a.error.is_empty(),
                            _ => false,
                        };
                        if again {
                            self.restart(pod, c, Kind::Container, a, &sandbox).await;
                        } else {
                            self.waiting.remove(&c.name);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        self.start_ephemeral(pod, &run, &sandbox).await;
        let run = self.observe().await;
        self.report_with(pod, &run, initialized).await;
        Ok(false)
    }

    /// Evicts the pod under node pressure: its containers stop (1 s, a
    /// hard threshold's grace) and it fails with reason Evicted.
    async fn evict(&mut self, pod: &Pod, message: String) {
        self.event(pod, true, "Evicted", message.clone()).await;
        self.kill_all(pod, 1).await;
        self.failed = Some(("Evicted".into(), message.clone()));
        self.evicted = Some(message);
    }

    /// Starts each ephemeral container once (the kubelet never restarts
    /// them), in the process namespace of its target when it names one.
    async fn start_ephemeral(&mut self, pod: &Pod, run: &Running, sandbox: &Sandbox) {
        let spec = pod.spec.clone().unwrap_or_default();
        for e in spec.ephemeral_containers.iter().flatten() {
            if run.attempts.contains_key(&e.name) {
                continue;
            }
            if let Some(t) = e.target_container_name.as_deref().filter(|t| !t.is_empty()) {
                match run
                    .attempts
                    .get(t)
                    .and_then(|a| a.last())
                    .filter(|a| a.running())
                {
                    Some(a) => {
                        self.ephemeral_targets.insert(e.name.clone(), a.id.clone());
                    }
                    None => {
                        self.waiting.insert(
                            e.name.clone(),
                            (
                                "CreateContainerError".into(),
                                format!("target container {t:?} is not running"),
                            ),
                        );
                        continue;
                    }
                }
            }
            let c = crate::ephemeral::as_container(e);
            self.start(pod, &c, Kind::Ephemeral, 0, sandbox).await;
        }
    }

    async fn set_up_volumes(&mut self, pod: &Pod) -> Result<BTreeMap<String, Ready>, String> {
        let sources = self.shared.sources(pod).await;
        let claims = self.shared.claims(pod).await;
        let tokens = self.shared.tokens(pod).await?;
        let root = self.shared.cfg.root.clone();
        let pod = pod.clone();
        let node = self.shared.allocatable.clone();
        blocking(move || {
            volumes::set_up(&root, &pod, &sources, &claims, &tokens, &node)
                .map_err(|e| e.to_string())
        })
        .await?
    }

    /// Starts attempt `n` of `c` (pulling its image first as its policy says).
    async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        attempt: u32,
        sandbox: &Sandbox,
    ) {
        let image = c.image.clone().unwrap_or_default();
        if let Some((not_before, _)) = self.pull_backoff.get(&c.name)
            && Instant::now() < *not_before
        {
            self.waiting.insert(
                c.name.clone(),
                (
                    "ImagePullBackOff".into(),
                    format!("Back-off pulling image \"{image}\""),
                ),
            );
            return;
        }
        if let Err((reason, message)) = self.ensure_image(pod, c).await {
            if reason == "ErrImagePull" {
                let delay = self
                    .pull_backoff
                    .get(&c.name)
                    .map_or(BACKOFF_START, |(_, d)| (*d * 2).min(BACKOFF_MAX));
                self.pull_backoff
                    .insert(c.name.clone(), (Instant::now() + delay, delay));
            }
            self.waiting.insert(c.name.clone(), (reason, message));
            return;
        }
        self.pull_backoff.remove(&c.name);
        let mut sources = self.shared.sources(pod).await;
        sources.service_env = self.shared.service_env(pod).await;
        let env = match env::container_env(pod, c, &sources, &self.shared.allocatable) {
            Ok(e) => e,
            Err(e) => {
                self.config_error(pod, c, e.0).await;
                return;
            }
        };
        let Some(vols) = self.volumes.clone() else {
            return;
        };
        let log_dir = volumes::pod_dir(&self.shared.cfg.root, &self.key.uid)
            .join("containers")
            .join(&c.name);
        let tlog = log_dir.join(attempt.to_string());
        if let Err(e) = std::fs::create_dir_all(&log_dir).and_then(|()| std::fs::write(&tlog, b""))
        {
            self.config_error(pod, c, format!("create the termination-message file: {e}"))
                .await;
            return;
        }
        let inputs = ContainerInputs {
            container: c,
            kind,
            attempt,
            env,
            volumes: &vols,
            termination_log: tlog.clone(),
            root: &self.shared.cfg.root,
        };
        let cspec = match translate::container_spec(pod, sandbox, &inputs) {
            Ok(mut s) => {
                if let Some(target) = self.ephemeral_targets.get(&c.name)
                    && s.namespaces.pid == berth_engine::config::PidMode::Private
                {
                    s.namespaces.pid = berth_engine::config::PidMode::Container(target.clone());
                }
                s
            }
            Err(e) => {
                self.config_error(pod, c, e.0).await;
                return;
            }
        };
        let engine = self.shared.engine.clone();
        let attempt_of = Attempt {
            container: c.name.clone(),
            kind,
            attempt,
        };
        let created = self
            .runtime("create_container", move || -> Result<Known, String> {
                let made = engine.create(&cspec).map_err(|e| e.to_string())?;
                // the termination-message file, by the container's directory
                let _ = std::fs::write(
                    termination_link(&engine, &made.id),
                    tlog.to_string_lossy().as_bytes(),
                );
                let c = engine.container(&made.id).map_err(|e| e.to_string())?;
                Ok(Known {
                    attempt: attempt_of,
                    id: made.id,
                    image: c.record.image,
                    image_id: c.record.image_id,
                    dir: c.dir,
                })
            })
            .await
            .and_then(|r| r);
        let id = match created {
            Ok(k) => {
                let id = k.id.clone();
                if let Some(known) = self.cache.known.as_mut() {
                    known.push(k);
                } else {
                    // not scanned yet: the next pass scans the sandbox
                    self.cache.sandbox = None;
                }
                id
            }
            Err(e) => {
                self.waiting
                    .insert(c.name.clone(), ("CreateContainerError".into(), e.clone()));
                self.event(pod, true, "Failed", format!("Error: {e}")).await;
                return;
            }
        };
        self.event(
            pod,
            false,
            "Created",
            format!("Created container: {}", c.name),
        )
        .await;
        let engine = self.shared.engine.clone();
        let sid = id.clone();
        let started = self
            .runtime("start_container", move || {
                engine.start(&sid, || Ok(())).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r);
        match started {
            Ok(()) => {
                self.shared.metrics.container_started(kind);
                self.waiting.remove(&c.name);
                self.event(
                    pod,
                    false,
                    "Started",
                    format!("Started container {}", c.name),
                )
                .await;
                self.post_start(pod, c, &id).await;
            }
            Err(e) => {
                let msg = crate::start_error_message(&e);
                self.event(pod, true, "Failed", format!("Error: {msg}"))
                    .await;
                self.bump_backoff(&c.name);
            }
        }
    }

    async fn config_error(&mut self, pod: &Pod, c: &Container, message: String) {
        self.waiting.insert(
            c.name.clone(),
            ("CreateContainerConfigError".into(), message.clone()),
        );
        if self.warned.insert(format!("config/{}/{message}", c.name)) {
            self.event(pod, true, "Failed", format!("Error: {message}"))
                .await;
        }
    }

    fn bump_backoff(&mut self, name: &str) {
        let delay = self
            .backoff
            .get(name)
            .map_or(BACKOFF_START, |(_, d)| (*d * 2).min(BACKOFF_MAX));
        self.backoff
            .insert(name.to_owned(), (Instant::now() + delay, delay));
    }

    /// Restarts an exited container, respecting the back-off.
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        last: &AttemptState,
        sandbox: &Sandbox,
    ) {
        let now = Instant::now();
        if let Some((not_before, delay)) = self.backoff.get(&c.name).copied()
            && now < not_before
        {
            let msg = format!(
                "back-off {} restarting failed container={} pod={}_{}({})",
                fmt_delay(delay),
                c.name,
                self.key.name,
                self.key.namespace,
                self.key.uid
            );
            if self
                .waiting
                .get(&c.name)
                .is_none_or(|w| w.0 != "CrashLoopBackOff")
            {
                self.event(
                    pod,
                    true,
                    "BackOff",
                    "Back-off restarting failed container".to_owned()
                        + &format!(
                            " {} in pod {}_{}({})",
                            c.name, self.key.name, self.key.namespace, self.key.uid
                        ),
                )
                .await;
            }
            self.waiting
                .insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
            return;
        }
        // a container that ran 10 minutes resets its back-off (the kubelet's rule)
        let ran_long = chrono_secs(&last.finished_at)
            .zip(chrono_secs(&last.started_at))
            .is_some_and(|(f, s)| f - s > 600);
        if ran_long {
            self.backoff.remove(&c.name);
        }
        // keep the previous attempt (logs -p); remove older ones
        let old: Vec<String> = self
            .cache
            .known
            .iter()
            .flatten()
            .filter(|k| k.attempt.container == c.name && k.attempt.attempt < last.attempt)
            .map(|k| k.id.clone())
            .collect();
        if !old.is_empty() {
            let engine = self.shared.engine.clone();
            let _ = blocking(move || {
                for id in old {
                    let _ = engine.remove(&id, true, false);
                }
            })
            .await;
        }
        self.probes.remove(&c.name);
        self.post_started.remove(&c.name);
        self.start(pod, c, kind, last.attempt + 1, sandbox).await;
        if !self.backoff.contains_key(&c.name) || ran_long {
            self.backoff
                .insert(c.name.clone(), (Instant::now(), BACKOFF_START / 2));
        } else {
            self.bump_backoff(&c.name);
        }
    }

    async fn ensure_image(&mut self, pod: &Pod, c: &Container) -> Result<(), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if image.ends_with(":latest") || !image.rsplit('/').next().unwrap_or("").contains(':') {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let engine = self.shared.engine.clone();
        let name = image.clone();
        let present = blocking(move || engine.images().resolve(&name).is_ok())
            .await
            .unwrap_or(false);
        if policy == "Never" {
            if present {
                return Ok(());
            }
            let msg =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            if self.warned.insert(format!("neverpull/{}", c.name)) {
                self.event(pod, true, "ErrImageNeverPull", msg.clone())
                    .await;
            }
            return Err(("ErrImageNeverPull".into(), msg));
        }
        if present && policy == "IfNotPresent" {
            if self.warned.insert(format!("present/{}", c.name)) {
                self.event(
                    pod,
                    false,
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                )
                .await;
            }
            return Ok(());
        }
        self.event(pod, false, "Pulling", format!("Pulling image \"{image}\""))
            .await;
        let (config, missing) = self.shared.pull_config(pod).await;
        if !missing.is_empty()
            && self
                .warned
                .insert(format!("pullsecrets/{}", missing.join(",")))
        {
            self.event(
                pod,
                true,
                "FailedToRetrieveImagePullSecret",
                format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                    missing.join(", ")
                ),
            )
            .await;
        }
        let t0 = Instant::now();
        let engine = self.shared.engine.clone();
        let name = image.clone();
        let pulled = self
            .runtime("pull_image", move || crate::pull(&engine, &name, config))
            .await
            .and_then(|r| r);
        match pulled {
            Ok(size) => {
                let secs = t0.elapsed().as_secs_f64();
                self.event(pod, false, "Pulled", format!("Successfully pulled image \"{image}\" in {secs:.3}s ({secs:.3}s including waiting). Image size: {size} bytes.")).await;
                Ok(())
            }
            Err(e) => {
                let msg = format!("Failed to pull image \"{image}\": {e}");
                self.event(pod, true, "Failed", msg.clone()).await;
                self.event(pod, true, "Failed", "Error: ErrImagePull".into())
                    .await;
                Err(("ErrImagePull".into(), msg))
            }
        }
    }

    async fn post_start(&mut self, pod: &Pod, c: &Container, id: &str) {
        let Some(handler) = c.lifecycle.as_ref().and_then(|l| l.post_start.clone()) else {
            return;
        };
        self.post_started.insert(c.name.clone());
        let outcome = self.run_handler(&handler, id, pod).await;
        if let Err(e) = outcome {
            self.event(
                pod,
                true,
                "FailedPostStartHook",
                format!("PostStartHook failed: {e}"),
            )
            .await;
            let engine = self.shared.engine.clone();
            let id = id.to_owned();
            let _ = blocking(move || engine.stop(&id, Some(0))).await;
        }
    }

    async fn run_handler(
        &self,
        h: &k8s_openapi::api::core::v1::LifecycleHandler,
        id: &str,
        pod: &Pod,
    ) -> Result<(), String> {
        if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
            return Ok(());
        }
        let probe = k8s_openapi::api::core::v1::Probe {
            exec: h.exec.clone(),
            http_get: h.http_get.clone(),
            tcp_socket: h.tcp_socket.clone(),
            timeout_seconds: Some(30),
            ..Default::default()
        };
        let t = probe::Target {
            container_id: id.to_owned(),
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_else(|| "127.0.0.1".into()),
            ports: Vec::new(),
        };
        match probe::run(&self.shared.engine, &probe, &t).await {
            Outcome::Success => Ok(()),
            Outcome::Failure(e) => Err(e),
        }
    }

    async fn probe_container(
        &mut self,
        pod: &Pod,
        c: &Container,
        a: &AttemptState,
        sandbox: &Sandbox,
    ) {
        let now = Instant::now();
        let was_ready = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|s| s.name == c.name))
            .is_some_and(|s| {
                s.ready && s.container_id.as_deref() == Some(&format!("berth://{}", a.id))
            });
        let entry = self.probes.entry(c.name.clone()).or_default();
        if entry.attempt_id != a.id {
            *entry = Probes {
                liveness: c.liveness_probe.as_ref().map(|_| Tracker::new(now, true)),
                // an adopted container keeps the readiness it had
                readiness: c
                    .readiness_probe
                    .as_ref()
                    .map(|_| Tracker::new(now, was_ready)),
                startup: c.startup_probe.as_ref().map(|_| Tracker::new(now, false)),
                attempt_id: a.id.clone(),
            };
        }
        let ip = sandbox
            .ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| self.shared.cfg.node_ip.to_string());
        let target = probe::Target {
            container_id: a.id.clone(),
            ip,
            ports: c
                .ports
                .iter()
                .flatten()
                .filter_map(|p| p.name.clone().map(|n| (n, p.container_port)))
                .collect(),
        };
        // startup first: the others wait for it
        if let (Some(p), Some(t)) = (
            &c.startup_probe,
            self.probes.get(&c.name).and_then(|p| p.startup.clone()),
        ) && !t.ok
        {
            if t.due(p, now) {
                let out = probe::run(&self.shared.engine, p, &target).await;
                let mut t = t;
                let ok = out == Outcome::Success;
                t.record(p, ok, now);
                let failures = t.failures;
                if let Some(pr) = self.probes.get_mut(&c.name) {
                    pr.startup = Some(t);
                }
                if let Outcome::Failure(m) = out {
                    self.event(pod, true, "Unhealthy", format!("Startup probe failed: {m}"))
                        .await;
                    if failures >= p.failure_threshold.unwrap_or(3).max(1) {
                        self.kill_for_restart(pod, c, a, "failed startup probe")
                            .await;
                    }
                }
            }
            return;
        }
        if let (Some(p), Some(mut t)) = (
            &c.liveness_probe,
            self.probes.get(&c.name).and_then(|p| p.liveness.clone()),
        ) && t.due(p, now)
        {
            let out = probe::run(&self.shared.engine, p, &target).await;
            t.record(p, out == Outcome::Success, now);
            let dead = !t.ok;
            if let Some(pr) = self.probes.get_mut(&c.name) {
                pr.liveness = Some(t);
            }
            if let Outcome::Failure(m) = out {
                self.event(
                    pod,
                    true,
                    "Unhealthy",
                    format!("Liveness probe failed: {m}"),
                )
                .await;
            }
            if dead {
                self.kill_for_restart(pod, c, a, "failed liveness probe")
                    .await;
                return;
            }
        }
        if let (Some(p), Some(mut t)) = (
            &c.readiness_probe,
            self.probes.get(&c.name).and_then(|p| p.readiness.clone()),
        ) && t.due(p, now)
        {
            let out = probe::run(&self.shared.engine, p, &target).await;
            t.record(p, out == Outcome::Success, now);
            if let Some(pr) = self.probes.get_mut(&c.name) {
                pr.readiness = Some(t);
            }
            if let Outcome::Failure(m) = out {
                self.event(
                    pod,
                    true,
                    "Unhealthy",
                    format!("Readiness probe failed: {m}"),
                )
                .await;
            }
        }
    }

    async fn kill_for_restart(&mut self, pod: &Pod, c: &Container, a: &AttemptState, why: &str) {
        self.event(
            pod,
            false,
            "Killing",
            format!("Container {} {why}, will be restarted", c.name),
        )
        .await;
        let grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        self.stop_container(pod, c, &a.id, grace).await;
        self.probes.remove(&c.name);
    }

    async fn stop_container(&self, pod: &Pod, c: &Container, id: &str, grace: i64) {
        let t0 = Instant::now();
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.clone()) {
            let hook = self.run_handler(&h, id, pod);
            if let Ok(Err(e)) =
                tokio::time::timeout(Duration::from_secs(grace.max(0) as u64), hook).await
            {
                self.shared
                    .event(
                        pod,
                        true,
                        "FailedPreStopHook",
                        format!("PreStopHook failed: {e}"),
                    )
                    .await;
            }
        }
        let left = (grace - t0.elapsed().as_secs() as i64).max(0);
        let engine = self.shared.engine.clone();
        let id = id.to_owned();
        let _ = self
            .runtime("stop_container", move || engine.stop(&id, Some(left)))
            .await;
    }

    /// Stops every container of the pod within `grace` seconds (preStop
    /// hooks first), app containers before sidecars.
    async fn kill_all(&mut self, pod: &Pod, grace: i64) {
        let run = self.observe().await;
        let spec = pod.spec.clone().unwrap_or_default();
        let mut app = Vec::new();
        for c in &spec.containers {
            if let Some(a) = run.attempts.get(&c.name).and_then(|v| v.last())
                && a.running()
            {
                app.push((c.clone(), a.id.clone()));
            }
        }
        for e in spec.ephemeral_containers.iter().flatten() {
            if let Some(a) = run.attempts.get(&e.name).and_then(|v| v.last())
                && a.running()
            {
                app.push((crate::ephemeral::as_container(e), a.id.clone()));
            }
        }
        for (c, _) in &app {
            self.event(
                pod,
                false,
                "Killing",
                format!("Stopping container {}", c.name),
            )
            .await;
        }
        let futs = app
            .iter()
            .map(|(c, id)| self.stop_container(pod, c, id, grace));
        futures::future::join_all(futs).await;
        let mut side = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            if let Some(a) = run.attempts.get(&c.name).and_then(|v| v.last())
                && a.running()
            {
                side.push((c.clone(), a.id.clone()));
            }
        }
        let futs = side
            .iter()
            .map(|(c, id)| self.stop_container(pod, c, id, 2));
        futures::future::join_all(futs).await;
    }

    /// Removes the pod's sandbox, containers and volumes from the node.
    async fn tear_down(&mut self, grace: i64) {
        let engine = self.shared.engine.clone();
        let name = self.key.sandbox_name();
        let root = self.shared.cfg.root.clone();
        let uid = self.key.uid.clone();
        let _ = blocking(move || {
            if let Ok(sb) = engine.sandbox(&name) {
                let _ = engine.stop_sandbox(&sb.id, Some(grace));
                if let Err(e) = engine.remove_sandbox(&sb.id) {
                    tracing::warn!(sandbox = %name, error = %e, "remove the pod's sandbox");
                }
            }
            if let Err(e) = volumes::tear_down(&root, &uid) {
                tracing::warn!(pod = %uid, error = %e, "remove the pod's volumes");
            }
        })
        .await;
    }

    async fn report(&mut self, pod: &Pod, run: &Running) {
        self.report_with(pod, run, false).await;
    }

    async fn report_with(&mut self, pod: &Pod, run: &Running, initialized: bool) {
        let spec = pod.spec.clone().unwrap_or_default();
        let notes = |c: &Container, w: &Worker| -> Notes {
            let p = w.probes.get(&c.name);
            // a probe that has not run yet counts as failing (the kubelet's
            // initial results), except readiness of an adopted container
            let passed = |probe: bool, t: Option<&Tracker>| !probe || t.is_some_and(|t| t.ok);
            let started = passed(
                c.startup_probe.is_some(),
                p.and_then(|p| p.startup.as_ref()),
            );
            Notes {
                waiting: w.waiting.get(&c.name).cloned(),
                ready: started
                    && passed(
                        c.readiness_probe.is_some(),
                        p.and_then(|p| p.readiness.as_ref()),
                    ),
                started,
            }
        };
        let mut init = BTreeMap::new();
        for c in spec.init_containers.iter().flatten() {
            init.insert(
                c.name.clone(),
                Observed {
                    attempts: run.attempts.get(&c.name).cloned().unwrap_or_default(),
                    notes: notes(c, self),
                },
            );
        }
        let mut app = BTreeMap::new();
        for c in &spec.containers {
            app.insert(
                c.name.clone(),
                Observed {
                    attempts: run.attempts.get(&c.name).cloned().unwrap_or_default(),
                    notes: notes(c, self),
                },
            );
        }
        let mut ephemeral = BTreeMap::new();
        for e in spec.ephemeral_containers.iter().flatten() {
            let attempts = run.attempts.get(&e.name).cloned().unwrap_or_default();
            let running = attempts.last().is_some_and(AttemptState::running);
            ephemeral.insert(
                e.name.clone(),
                Observed {
                    attempts,
                    notes: Notes {
                        waiting: self.waiting.get(&e.name).cloned(),
                        ready: false,
                        started: running,
                    },
                },
            );
        }
        let host_network = spec.host_network.unwrap_or(false);
        let facts = PodFacts {
            host_ip: self.shared.cfg.node_ip.to_string(),
            pod_ip: if host_network {
                Some(self.shared.cfg.node_ip.to_string())
            } else {
                run.sandbox
                    .as_ref()
                    .and_then(|s| s.ip)
                    .map(|i| i.to_string())
            },
            start_time: self.start_time.clone(),
            sandbox_ready: run
                .sandbox
                .as_ref()
                .is_some_and(|s| s.state == SandboxState::Ready),
            initialized,
            failed: self.failed.clone(),
            disruption: self.evicted.clone(),
            qos: translate::qos_name(translate::qos_class(&spec)).into(),
        };
        let st = status::pod_status(pod, &init, &app, &ephemeral, &facts);
        if self.starting && st.phase.as_deref() == Some("Running") {
            self.starting = false;
            self.shared.metrics.pod_start(self.seen.elapsed());
        }
        let value = serde_json::to_value(&st).unwrap_or_default();
        // a report that changes nothing is not sent (timestamps of unchanged conditions are kept)
        if self.last_status.as_ref() == Some(&value) {
            return;
        }
        let pods: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.key.namespace);
        let patch = serde_json::json!({"status": value});
        match pods
            .patch_status(
                &self.key.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => self.last_status = Some(patch["status"].clone()),
            Err(e) => tracing::debug!(pod = %self.key.name, error = %e, "status update"),
        }
    }
}

fn fmt_delay(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m0s", s / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn chrono_secs(t: &str) -> Option<i64> {
    t.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Where a container attempt's directory notes its termination-message file.
fn termination_log_of(dir: &std::path::Path) -> PathBuf {
    std::fs::read_to_string(dir.join("k8s-termination-log"))
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("k8s-termination-log-missing"))
}

fn termination_link(engine: &Engine, id: &str) -> PathBuf {
    engine.container_dir(id).join("k8s-termination-log")
}
