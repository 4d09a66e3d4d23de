//! The instructions after FROM: RUN, COPY and ADD go to their own
//! modules; the metadata instructions change the image's configuration
//! in a step of their own that makes no container.

use berth_types::image::{ContainerConfig, History};

use super::cache::Key;
use super::error::{BuildError, at};
use super::eval::{self, Vars};
use super::stage::{Builder, StageState, join_workdir};
use crate::dockerfile::{self, Instruction, Located};

impl Builder<'_> {
    /// One instruction of stage `st`.
    pub(crate) fn instruction(
        &mut self,
        st: &mut StageState,
        ins: &Located<Instruction>,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let esc = self.escape;
        let shell = eval::shell_of(st.cc());
        let nop = |text: String| -> String {
            let mut v = shell.clone();
            v.push("#(nop) ".into());
            v.push(text);
            v.join(" ")
        };
        match &ins.value {
            Instruction::Run(r) => super::run::run(self, st, r, ins),
            Instruction::Copy(c) => super::copy::copy(self, st, c, ins, false),
            Instruction::Add(c) => super::copy::copy(self, st, c, ins, true),
            Instruction::Env(pairs) => {
                let mut text = String::from("ENV");
                let mut cc = st.cc().clone();
                // every pair sees the environment as it was before this
                // ENV (Docker: `ENV abc=bye def=$abc` gives def the old abc)
                let before = st.cc().env.clone();
                for (k, v) in pairs {
                    let vars = Vars {
                        env: &before,
                        args: &st.args,
                    };
                    let k = vars.word(k, esc, line)?;
                    let v = vars.word(v, esc, line)?;
                    if k.is_empty() {
                        return Err(at(line, "ENV names can not be blank"));
                    }
                    text.push_str(&format!(" {k}={v}"));
                    eval::set_env(&mut cc.env, &k, &v);
                }
                self.meta_step(st, nop(text), move |c| *c = cc)
            }
            Instruction::Label(pairs) => {
                let mut text = String::from("LABEL");
                let mut labels = Vec::new();
                for (k, v) in pairs {
                    let k = st.vars().word(k, esc, line)?;
                    let v = st.vars().word(v, esc, line)?;
                    if k.is_empty() {
                        return Err(at(line, "LABEL names can not be blank"));
                    }
                    text.push_str(&format!(" {k}={v}"));
                    labels.push((k, v));
                }
                self.meta_step(st, nop(text), move |c| c.labels.extend(labels))
            }
            Instruction::Maintainer(m) => {
                let author = m.clone();
                let text = nop(format!("MAINTAINER {m}"));
                st.config.author = Some(author);
                self.meta_step(st, text, |_| {})
            }
            Instruction::Arg(decls) => {
                let mut text = String::from("ARG");
                for d in decls {
                    let v = self.arg_value(d, &st.vars(), line)?;
                    match (&d.default, &v) {
                        (Some(_), Some(v)) => text.push_str(&format!(" {}={v}", d.name)),
                        _ => text.push_str(&format!(" {}", d.name)),
                    }
                    st.args.insert(d.name.clone(), v);
                }
                // Docker records ARG as a step of its own (no layer)
                self.meta_step(st, nop(text), |_| {})
            }
            Instruction::Cmd(c) => {
                let v = eval::argv(c, &shell);
                let text = nop(format!("CMD {}", eval::go_quoted(&v)));
                st.cmd_set = true;
                self.meta_step(st, text, move |c| c.cmd = Some(v))
            }
            Instruction::Entrypoint(c) => {
                let v = eval::argv(c, &shell);
                let text = nop(format!("ENTRYPOINT {}", eval::go_quoted(&v)));
                // ENTRYPOINT resets a CMD inherited from the base, not one
                // this stage set
                let reset = !st.cmd_set && st.cc().cmd.is_some();
                self.meta_step(st, text, move |c| {
                    c.entrypoint = Some(v);
                    if reset {
                        c.cmd = None;
                    }
                })
            }
            Instruction::Expose(words) => {
                let mut all = Vec::new();
                for w in words {
                    all.extend(st.vars().words(w, esc, line)?);
                }
                let ports = eval::ports(&all, line)?;
                let text = nop(format!("EXPOSE {}", all.join(" ")));
                self.meta_step(st, text, move |c| {
                    for p in ports {
                        c.exposed_ports.insert(p, serde_json::json!({}));
                    }
                })
            }
            Instruction::Volume(words) => {
                let mut vols = Vec::new();
                for w in words {
                    let v = st.vars().word(w, esc, line)?;
                    if v.trim().is_empty() {
                        return Err(at(line, "VOLUME specified can not be an empty string"));
                    }
                    vols.push(v);
                }
                let text = nop(format!("VOLUME [{}]", vols.join(" ")));
                self.meta_step(st, text, move |c| {
                    for v in vols {
                        c.volumes.insert(v, serde_json::json!({}));
                    }
                })
            }
            Instruction::User(u) => {
                let u = st.vars().word(u, esc, line)?;
                if u.is_empty() {
                    return Err(at(line, "USER requires exactly one argument"));
                }
                let text = nop(format!("USER {u}"));
                self.meta_step(st, text, move |c| c.user = u)
            }
            Instruction::Workdir(w) => {
                let w = st.vars().word(w, esc, line)?;
                let dir = join_workdir(&st.cc().working_dir, &w);
                super::run::workdir(self, st, &dir)
            }
            Instruction::Shell(v) => {
                let v = v.clone();
                let text = nop(format!("SHELL [{}]", v.join(" ")));
                self.meta_step(st, text, move |c| c.shell = v)
            }
            Instruction::StopSignal(s) => {
                let s = st.vars().word(s, esc, line)?;
                eval::check_signal(&s, line)?;
                let text = nop(format!("STOPSIGNAL {s}"));
                self.meta_step(st, text, move |c| c.stop_signal = s)
            }
            Instruction::Healthcheck(h) => {
                let hc = eval::health(h);
                let text = nop(format!(
                    "HEALTHCHECK {}",
                    serde_json::to_string(&hc).unwrap_or_default()
                ));
                self.meta_step(st, text, move |c| c.healthcheck = Some(hc))
            }
            Instruction::Onbuild(t) => {
                // a trigger must parse now, not only in a child build
                dockerfile::parse::parse_instruction(t, esc).map_err(BuildError::Parse)?;
                let t = t.clone();
                let text = nop(format!("ONBUILD {t}"));
                self.meta_step(st, text, move |c| c.on_build.push(t))
            }
        }
    }

    /// A step that only changes the configuration: `created_by` is its
    /// history text, which is also its cache key with the parent and the
    /// arguments in scope.
    fn meta_step(
        &mut self,
        st: &mut StageState,
        created_by: String,
        change: impl FnOnce(&mut ContainerConfig),
    ) -> Result<(), BuildError> {
        let mut key = Key::new(st.image.as_ref());
        key.add("meta", created_by.as_bytes());
        key.describe(&created_by, Some(true));
        key.add(
            "author",
            st.config.author.as_deref().unwrap_or("").as_bytes(),
        );
        self.args_key(&mut key, st);
        let mut cfg = st.config.clone();
        change(cfg.config.get_or_insert_with(Default::default));
        cfg.history.push(History {
            created_by: Some(created_by),
            empty_layer: true,
            ..Default::default()
        });
        let parent = st.image.clone();
        self.finish_step(
            st,
            key,
            move |b, cfg| {
                let now = berth_image::images::now();
                cfg.created = Some(now.clone());
                if let Some(h) = cfg.history.last_mut() {
                    h.created = Some(now);
                }
                Ok(b.engine.derive_image(parent.as_ref(), cfg)?)
            },
            cfg,
        )
    }
}
