//! Running a Dockerfile's stages: which stages the target needs, each
//! stage's base image, and every instruction as one step that makes one
//! image (reused from the build cache when its key matches).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use berth_engine::Engine;
use berth_types::image::{ContainerConfig, ImageConfig, Platform, RootFs};
use berth_types::{Digest, Reference};

use super::cache::{self, Key};
use super::error::{BuildError, at};
use super::eval::{PROXY_ARGS, Vars};
use super::options::BuildOptions;
use super::output::{Progress, short};
use crate::context::SourceTree;
use crate::dockerfile::{self, ArgDecl, Dockerfile, Instruction, Located, Stage};

/// The state of the stage being built.
pub(crate) struct StageState {
    /// The image of the last step (`None`: `FROM scratch` and nothing yet).
    pub image: Option<Digest>,
    /// Its configuration.
    pub config: ImageConfig,
    /// Arguments declared in this stage, with their values.
    pub args: BTreeMap<String, Option<String>>,
    /// The stage's index.
    pub index: usize,
    /// Build without the cache (`--no-cache`, `--no-cache-filter`, or an
    /// earlier step missed it).
    pub no_cache: bool,
    /// A CMD was given in this stage (ENTRYPOINT then keeps it; it resets
    /// only a CMD inherited from the base, as Docker does).
    pub cmd_set: bool,
}

impl StageState {
    pub fn cc(&self) -> &ContainerConfig {
        static EMPTY: std::sync::OnceLock<ContainerConfig> = std::sync::OnceLock::new();
        self.config
            .config
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(ContainerConfig::default))
    }

    pub fn cc_mut(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    /// Makes `id` the stage's image (its configuration read from the store).
    pub fn set_image(&mut self, engine: &Engine, id: Digest) -> Result<(), BuildError> {
        self.config = engine
            .images()
            .config(&id)
            .map_err(berth_engine::Error::from)?;
        self.image = Some(id);
        Ok(())
    }

    pub fn vars(&self) -> Vars<'_> {
        Vars {
            env: &self.cc().env,
            args: &self.args,
        }
    }
}

/// What every stage of a build shares: the inputs, the plan, the global
/// arguments, and the stages' results as they come.
pub(crate) struct Shared<'a> {
    pub engine: &'a Engine,
    pub ctx: &'a SourceTree,
    pub df: &'a Dockerfile,
    pub opts: &'a BuildOptions,
    /// Stops the build (the caller cancelled, or another stage failed).
    pub cancel: &'a AtomicBool,
    pub escape: char,
    /// Global arguments (before the first FROM) with their values.
    meta: BTreeMap<String, Option<String>>,
    /// Build arguments some ARG consumed.
    used: Mutex<BTreeSet<String>>,
    /// The stages to build, in order.
    plan: Vec<usize>,
    /// Each built stage's image.
    results: Mutex<BTreeMap<usize, Digest>>,
    total: usize,
    pub platform: Platform,
}

/// One stage's builder: the shared state, where its progress goes, and
/// its step count.
pub(crate) struct Builder<'a> {
    shared: &'a Shared<'a>,
    pub out: &'a mut dyn Progress,
    step: usize,
}

impl<'a> std::ops::Deref for Builder<'a> {
    type Target = Shared<'a>;
    fn deref(&self) -> &Shared<'a> {
        self.shared
    }
}

/// What a stage's thread reports.
enum Msg {
    Out(usize, String),
    Done(usize, Result<Digest, BuildError>),
}

/// A stage thread's progress: text to the main thread, which prints the
/// stages' output in plan order.
struct ToMain {
    stage: usize,
    tx: std::sync::mpsc::Sender<Msg>,
}

impl Progress for ToMain {
    fn stream(&mut self, text: &str) {
        let _ = self.tx.send(Msg::Out(self.stage, text.to_owned()));
    }
}

impl<'a> Shared<'a> {
    pub fn new(
        engine: &'a Engine,
        ctx: &'a SourceTree,
        df: &'a Dockerfile,
        opts: &'a BuildOptions,
        cancel: &'a AtomicBool,
    ) -> Result<Shared<'a>, BuildError> {
        let platform = match &opts.platform {
            Some(p) => {
                let p = Platform::parse(p).ok_or_else(|| {
                    BuildError::Image(format!("invalid platform {p:?}: expected os/arch"))
                })?;
                let host = Platform::host();
                if p.os != host.os || p.architecture != host.architecture {
                    return Err(BuildError::NotSupported(format!(
                        "building for {} on a {} host",
                        p.display(),
                        host.display()
                    )));
                }
                p
            }
            None => Platform::host(),
        };
        let mut b = Shared {
            engine,
            ctx,
            df,
            opts,
            cancel,
            escape: df.directives.escape,
            meta: BTreeMap::new(),
            used: Mutex::new(BTreeSet::new()),
            plan: Vec::new(),
            results: Mutex::new(BTreeMap::new()),
            total: 0,
            platform,
        };
        b.meta = b.platform_args();
        for decls in &df.meta_args {
            for d in &decls.value {
                let v = b.arg_value(
                    d,
                    &Vars {
                        env: &[],
                        args: &b.meta.clone(),
                    },
                    decls.line,
                )?;
                b.meta.insert(d.name.clone(), v);
            }
        }
        b.plan = b.plan_stages()?;
        b.total = df.meta_args.len()
            + b.plan
                .iter()
                .map(|&i| 1 + df.stages[i].instructions.len())
                .sum::<usize>();
        Ok(b)
    }

    /// BuildKit's automatic platform arguments.
    fn platform_args(&self) -> BTreeMap<String, Option<String>> {
        let mut m = BTreeMap::new();
        let host = Platform::host();
        for (prefix, p) in [("TARGET", &self.platform), ("BUILD", &host)] {
            m.insert(format!("{prefix}PLATFORM"), Some(p.display()));
            m.insert(format!("{prefix}OS"), Some(p.os.clone()));
            m.insert(format!("{prefix}ARCH"), Some(p.architecture.clone()));
            m.insert(
                format!("{prefix}VARIANT"),
                Some(p.variant.clone().unwrap_or_default()),
            );
        }
        m
    }

    /// An `ARG`'s value: the build argument, else its default (expanded),
    /// else the global argument of that name.
    pub fn arg_value(
        &self,
        d: &ArgDecl,
        vars: &Vars<'_>,
        line: usize,
    ) -> Result<Option<String>, BuildError> {
        if let Some(v) = self.opts.build_args.get(&d.name) {
            if let Ok(mut u) = self.used.lock() {
                u.insert(d.name.clone());
            }
            if let Some(v) = v {
                return Ok(Some(v.clone()));
            }
        }
        match &d.default {
            Some(def) => Ok(Some(vars.word(def, self.escape, line)?)),
            None => Ok(self.meta.get(&d.name).cloned().flatten()),
        }
    }

    fn meta_vars(&self) -> Vars<'_> {
        Vars {
            env: &[],
            args: &self.meta,
        }
    }

    /// The image stage `j` made, once it is built.
    pub fn stage_result(&self, j: usize) -> Option<Digest> {
        self.results.lock().ok()?.get(&j).cloned()
    }
    /// Which stage a name (or index) means, if any.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.df
            .stages
            .iter()
            .position(|s| s.from.value.name.as_deref() == Some(lower.as_str()))
    }

    /// The stages the target needs, in file order.
    fn plan_stages(&self) -> Result<Vec<usize>, BuildError> {
        let stages = &self.df.stages;
        if stages.is_empty() {
            return Err(BuildError::Image(
                "the Dockerfile has no FROM: nothing to build".into(),
            ));
        }
        let target = match &self.opts.target {
            Some(t) => self.stage_index(t).ok_or_else(|| {
                BuildError::Image(format!("failed to reach build target {t} in Dockerfile"))
            })?,
            None => stages.len() - 1,
        };
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            for d in self.deps(i)? {
                todo.push(d);
            }
        }
        Ok(need.into_iter().collect())
    }

    /// The earlier stages stage `i` uses (its base, `COPY --from`).
    fn deps(&self, i: usize) -> Result<Vec<usize>, BuildError> {
        let s = &self.df.stages[i];
        let mut v = Vec::new();
        let base = self
            .meta_vars()
            .word(&s.from.value.image, self.escape, s.from.line)?;
        if let Some(j) = self.stage_index(&base) {
            if j >= i {
                return Err(at(
                    s.from.line,
                    format!("stage {base} is defined after this one (FROM {base})"),
                ));
            }
            v.push(j);
        }
        for ins in &s.instructions {
            let from = match &ins.value {
                Instruction::Copy(c) | Instruction::Add(c) => c.from.as_deref(),
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        if let Some(f) = super::mounts::from_of(m)
                            && let Some(j) = self.stage_ref(&f, i, ins.line)?
                        {
                            v.push(j);
                        }
                    }
                    None
                }
                _ => None,
            };
            if let Some(f) = from {
                let f = self.meta_vars().word(f, self.escape, ins.line)?;
                if let Some(j) = self.stage_ref(&f, i, ins.line)? {
                    v.push(j);
                }
            }
        }
        Ok(v)
    }

    /// `--from=` as a stage: by name or index; a later stage is an error;
    /// `None` means an image.
    pub fn stage_ref(&self, f: &str, i: usize, line: usize) -> Result<Option<usize>, BuildError> {
        if let Ok(n) = f.parse::<usize>() {
            if n >= i {
                return Err(at(
                    line,
                    format!("invalid from flag value {f}: refers to current or future build stage"),
                ));
            }
            return Ok(Some(n));
        }
        match self.stage_index(f) {
            Some(j) if j >= i => Err(at(
                line,
                format!("invalid from flag value {f}: refers to current or future build stage"),
            )),
            Some(j) => Ok(Some(j)),
            None => Ok(None),
        }
    }

    /// Builds the planned stages, each in a thread of its own as soon as
    /// the stages it uses are built (independent stages at once), their
    /// output printed in plan order; then the final image's labels.
    /// Returns the last stage's image.
    pub fn run(&self, out: &mut dyn Progress, external: &AtomicBool) -> Result<Digest, BuildError> {
        let mut main = Builder {
            shared: self,
            out,
            step: 0,
        };
        // the global ARGs are steps of their own in Docker's count
        for a in &self.df.meta_args {
            main.step_line(&a.original);
        }
        let mut first_step = BTreeMap::new();
        let mut n = self.df.meta_args.len();
        for &i in &self.plan {
            first_step.insert(i, n);
            n += 1 + self.df.stages[i].instructions.len();
        }
        let mut deps = BTreeMap::new();
        for &i in &self.plan {
            deps.insert(i, self.deps(i)?);
        }
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let mut failure: Option<BuildError> = None;
        std::thread::scope(|scope| {
            let mut started = BTreeSet::new();
            let mut done = BTreeSet::new();
            let mut buffered: BTreeMap<usize, String> = BTreeMap::new();
            let mut turn = 0;
            loop {
                if failure.is_none() {
                    for &i in &self.plan {
                        if started.contains(&i) || !deps[&i].iter().all(|d| done.contains(d)) {
                            continue;
                        }
                        started.insert(i);
                        let tx = tx.clone();
                        let step = first_step[&i];
                        scope.spawn(move || {
                            let mut sink = ToMain {
                                stage: i,
                                tx: tx.clone(),
                            };
                            let mut b = Builder {
                                shared: self,
                                out: &mut sink,
                                step,
                            };
                            let r = b.build_stage(i);
                            let _ = tx.send(Msg::Done(i, r));
                        });
                    }
                }
                if started.len() == done.len() {
                    break;
                }
                let msg = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(_) => {
                        if external.load(std::sync::atomic::Ordering::Relaxed) {
                            self.cancel
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        continue;
                    }
                };
                match msg {
                    Msg::Out(i, text) => {
                        if self.plan.get(turn) == Some(&i) {
                            main.out.stream(&text);
                        } else {
                            buffered.entry(i).or_default().push_str(&text);
                        }
                    }
                    Msg::Done(i, r) => {
                        done.insert(i);
                        match r {
                            Ok(id) => {
                                if let Ok(mut m) = self.results.lock() {
                                    m.insert(i, id);
                                }
                            }
                            Err(e) => {
                                self.cancel
                                    .store(true, std::sync::atomic::Ordering::Relaxed);
                                // the first failure is the build's (the
                                // others were stopped by it)
                                let replace = match &failure {
                                    None => true,
                                    Some(BuildError::Cancelled) => {
                                        !matches!(e, BuildError::Cancelled)
                                    }
                                    Some(_) => false,
                                };
                                if replace {
                                    failure = Some(e);
                                }
                            }
                        }
                        // the stages whose turn has come print what they kept
                        while let Some(&next) = self.plan.get(turn) {
                            if let Some(text) = buffered.remove(&next) {
                                main.out.stream(&text);
                            }
                            if !done.contains(&next) {
                                break;
                            }
                            turn += 1;
                        }
                    }
                }
            }
            for (_, text) in std::mem::take(&mut buffered) {
                main.out.stream(&text);
            }
        });
        if let Some(e) = failure {
            if external.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(BuildError::Cancelled);
            }
            return Err(e);
        }
        let last = self.plan.last().and_then(|&i| self.stage_result(i));
        let id = last.ok_or_else(|| BuildError::Image("nothing to build".into()))?;
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        let unused: Vec<&str> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            main.out.stream(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }
        let id = main.final_labels(id)?;
        main.out.image_id(&id.to_string());
        main.out
            .stream(&format!("Successfully built {}\n", short(&id.to_string())));
        main.tag(&id)?;
        Ok(id)
    }
}

impl Builder<'_> {
    /// `--label`s go on the final image as one more (cached) step.
    fn final_labels(&mut self, id: Digest) -> Result<Digest, BuildError> {
        if self.opts.labels.is_empty() {
            return Ok(id);
        }
        let mut cfg = self
            .engine
            .images()
            .config(&id)
            .map_err(berth_engine::Error::from)?;
        let mut key = Key::new(Some(&id));
        for (k, v) in &self.opts.labels {
            key.add("label", format!("{k}={v}").as_bytes());
            cfg.config
                .get_or_insert_with(Default::default)
                .labels
                .insert(k.clone(), v.clone());
        }
        let key = key.finish();
        if !self.opts.no_cache
            && let Some(hit) = cache::lookup(self.engine, &key)
        {
            return Ok(hit);
        }
        cfg.created = Some(berth_image::images::now());
        let new = self.engine.derive_image(Some(&id), &cfg)?;
        let _ = cache::record(self.engine, &key, &new);
        Ok(new)
    }

    /// Tags the result with every `-t`.
    fn tag(&mut self, id: &Digest) -> Result<Vec<String>, BuildError> {
        let mut tags = Vec::new();
        for t in &self.opts.tags {
            self.engine.tag_image(&id.to_string(), t)?;
            let name = t.familiar();
            self.out.stream(&format!("Successfully tagged {name}\n"));
            tags.push(name);
        }
        Ok(tags)
    }

    fn step_line(&mut self, original: &str) {
        self.step += 1;
        self.out.stream(&format!(
            "Step {}/{} : {}\n",
            self.step, self.total, original
        ));
    }

    fn build_stage(&mut self, i: usize) -> Result<Digest, BuildError> {
        let stage: &Stage = &self.df.stages[i];
        let from = &stage.from;
        self.step_line(&from.original);
        let image = self
            .meta_vars()
            .word(&from.value.image, self.escape, from.line)?;
        if image.is_empty() {
            return Err(at(from.line, "base name (FROM) should not be blank"));
        }
        // FROM --platform: berth builds for this host's platform only
        if let Some(p) = &from.value.platform {
            let p = self.meta_vars().word(p, self.escape, from.line)?;
            let want = Platform::parse(&p).ok_or_else(|| {
                at(
                    from.line,
                    format!("invalid platform {p:?} in FROM --platform: expected os/arch"),
                )
            })?;
            if want.os != self.platform.os || want.architecture != self.platform.architecture {
                return Err(BuildError::NotSupported(format!(
                    "FROM --platform={p} (line {}): berth builds for {} only",
                    from.line,
                    self.platform.display()
                )));
            }
        }
        let mut st = StageState {
            image: None,
            config: scratch_config(&self.platform),
            args: BTreeMap::new(),
            index: i,
            no_cache: self.opts.no_cache
                || stage.from.value.name.as_ref().is_some_and(|n| {
                    self.opts
                        .no_cache_filter
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(n))
                })
                || self
                    .opts
                    .no_cache_filter
                    .iter()
                    .any(|f| f == &i.to_string()),
            cmd_set: false,
        };
        if let Some(j) = self.stage_index(&image).filter(|&j| j < i) {
            let id = self
                .stage_result(j)
                .ok_or_else(|| at(from.line, format!("stage {image} was not built")))?;
            st.set_image(self.engine, id)?;
        } else if !image.eq_ignore_ascii_case("scratch") {
            let id = self.base_image(&image, from.line)?;
            st.set_image(self.engine, id)?;
        }
        self.out.stream(&format!(
            " ---> {}\n",
            st.image
                .as_ref()
                .map(|d| short(&d.to_string()).to_owned())
                .unwrap_or_default()
        ));
        if st.image.is_none() {
            // scratch: an image without layers to start from, the same
            // every time (no creation time), so the cache keys of the
            // steps on it are stable
            st.image = Some(self.engine.derive_image(None, &st.config)?);
        }
        // ONBUILD triggers of the base run first, and are not inherited
        let triggers = std::mem::take(&mut st.cc_mut().on_build);
        if !triggers.is_empty() {
            let n = triggers.len();
            self.out.stream(&format!(
                "# Executing {n} build trigger{}\n",
                if n == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let ins = dockerfile::parse::parse_instruction(t, self.escape)
                    .map_err(BuildError::Parse)?;
                let ins = Located {
                    line: from.line,
                    end_line: from.line,
                    ..ins
                };
                self.instruction(&mut st, &ins)?;
            }
        }
        for ins in &stage.instructions {
            super::cancelled(self.cancel)?;
            self.step_line(&ins.original);
            self.instruction(&mut st, ins)?;
        }
        st.image
            .ok_or_else(|| BuildError::Image("the stage made no image".into()))
    }

    /// A base image: present (or pulled when missing, or always with
    /// `--pull`).
    pub fn base_image(&mut self, name: &str, line: usize) -> Result<Digest, BuildError> {
        let r: Reference = name
            .parse()
            .map_err(|e| at(line, format!("invalid reference format: {name}: {e}")))?;
        let present = self.engine.images().resolve(&r.to_string()).ok();
        if let Some(rec) = &present
            && !self.opts.pull
        {
            return Ok(rec.id.clone());
        }
        let Some(p) = &self.opts.puller else {
            return match present {
                Some(rec) => Ok(rec.id),
                None => Err(BuildError::Image(format!(
                    "pull access denied for {}, repository does not exist or may require \
                     'docker login': No such image: {}",
                    r.familiar_repository(),
                    r.familiar()
                ))),
            };
        };
        let platform = self.opts.platform.clone();
        match p.pull(self.engine, &r, platform.as_deref(), self.out) {
            Ok(id) => Ok(id),
            Err(e) => match present {
                // --pull of an image that is present: the local one stands
                // only if the registry cannot be reached? Docker fails.
                Some(_) | None => Err(BuildError::Image(e)),
            },
        }
    }
}

/// `WORKDIR` relative to the current one.
pub fn join_workdir(cur: &str, w: &str) -> String {
    let joined = if w.starts_with('/') {
        w.to_owned()
    } else {
        let base = if cur.is_empty() { "/" } else { cur };
        format!("{}/{w}", base.trim_end_matches('/'))
    };
    clean_path(&joined)
}

/// A path cleaned lexically (`a/./b/../c` → `/a/c`), absolute.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The configuration `FROM scratch` starts from.
fn scratch_config(p: &Platform) -> ImageConfig {
    ImageConfig {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        config: Some(ContainerConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            ..Default::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        },
        ..Default::default()
    }
}
