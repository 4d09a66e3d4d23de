use super::*;
use crate::dockerfile::words;
use std::time::Duration;

fn ok(text: &str) -> Dockerfile {
    match parse("Dockerfile", text) {
        Ok(d) => d,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse("Dockerfile", text) {
        Ok(d) => panic!("{text:?} parsed: {d:?}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage.
fn ins(text: &str) -> Vec<Instruction> {
    let d = ok(text);
    assert_eq!(d.stages.len(), 1, "{text:?}");
    d.stages
        .into_iter()
        .flat_map(|s| s.instructions)
        .map(|l| l.value)
        .collect()
}

fn one(line: &str) -> Instruction {
    let mut v = ins(&format!("FROM scratch\n{line}\n"));
    assert_eq!(v.len(), 1, "{line:?}");
    v.remove(0)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn error_display_reads_like_docker() {
    let e = err("FROM a\nRUN x\nRUNN y\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.file, "Dockerfile");
    assert_eq!(e.text, "RUNN y");
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)"
    );
    let e = err("FROM a\nfrobnicate x\n");
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: unknown instruction: frobnicate"
    );
    assert!(
        err("FROM a\ncopyy a b\n")
            .message
            .ends_with("(did you mean copy?)")
    );
}

#[test]
fn commands_shell_and_exec_forms() {
    let cases: &[(&str, Instruction)] = &[
        (
            "CMD echo hi",
            Instruction::Cmd(Command::Shell("echo hi".into())),
        ),
        (
            r#"CMD ["echo", "hi"]"#,
            Instruction::Cmd(Command::Exec(s(&["echo", "hi"]))),
        ),
        (
            r#"cmd   [ "a" ]  "#,
            Instruction::Cmd(Command::Exec(s(&["a"]))),
        ),
        ("CMD []", Instruction::Cmd(Command::Exec(vec![]))),
        ("CMD", Instruction::Cmd(Command::Shell(String::new()))),
        (
            "CMD [echo]",
            Instruction::Cmd(Command::Shell("[echo]".into())),
        ),
        (
            "CMD ['single', 'quotes']",
            Instruction::Cmd(Command::Shell("['single', 'quotes']".into())),
        ),
        (
            r#"CMD '["echo", "json in a string"]'"#,
            Instruction::Cmd(Command::Shell(r#"'["echo", "json in a string"]'"#.into())),
        ),
        (
            r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
            Instruction::Entrypoint(Command::Exec(s(&["/bin/sh", "-c"]))),
        ),
        (
            "entrypoint top -b",
            Instruction::Entrypoint(Command::Shell("top -b".into())),
        ),
        (
            r#"SHELL ["pwsh", "-c"]"#,
            Instruction::Shell(s(&["pwsh", "-c"])),
        ),
        ("USER app:app", Instruction::User("app:app".into())),
        ("WORKDIR /a b", Instruction::Workdir("/a b".into())),
        (
            "STOPSIGNAL SIGKILL",
            Instruction::StopSignal("SIGKILL".into()),
        ),
        (
            "EXPOSE 80 443/udp",
            Instruction::Expose(s(&["80", "443/udp"])),
        ),
        ("VOLUME /a /b", Instruction::Volume(s(&["/a", "/b"]))),
        (
            r#"VOLUME ["/a", "/b c"]"#,
            Instruction::Volume(s(&["/a", "/b c"])),
        ),
        (
            "MAINTAINER Jo <jo@x>",
            Instruction::Maintainer("Jo <jo@x>".into()),
        ),
        ("ONBUILD RUN make", Instruction::Onbuild("RUN make".into())),
        (
            "onbuild   copy . /src",
            Instruction::Onbuild("copy . /src".into()),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(&one(line), want, "{line:?}");
    }
}

#[test]
fn json_with_non_strings_is_refused_as_docker_does() {
    for line in [
        r#"CMD ["a", 1]"#,
        r#"RUN ["a", null]"#,
        r#"ENTRYPOINT [["a"]]"#,
        r#"COPY ["a", true]"#,
        r#"VOLUME [{}]"#,
        r#"ONBUILD RUN ["a", 1]"#,
    ] {
        let e = err(&format!("FROM a\n{line}\n"));
        assert_eq!(e.message, words::NOT_STRING_ARRAY, "{line:?}");
        assert_eq!(e.line, 2);
    }
}

#[test]
fn run_flags_and_forms() {
    let Instruction::Run(r) = one(
        "RUN --mount=type=cache,target=/c --mount=type=secret,id=a --network=none --security=insecure make all",
    ) else {
        panic!("not RUN")
    };
    assert_eq!(r.command, Command::Shell("make all".into()));
    assert_eq!(r.mounts, s(&["type=cache,target=/c", "type=secret,id=a"]));
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.security.as_deref(), Some("insecure"));
    let Instruction::Run(r) = one(r#"RUN --network=host ["a", "b"]"#) else {
        panic!("not RUN")
    };
    assert_eq!(r.command, Command::Exec(s(&["a", "b"])));
    assert_eq!(r.network.as_deref(), Some("host"));
    assert!(r.mounts.is_empty());
}

#[test]
fn instruction_errors_match_docker() {
    let cases: &[(&str, &str)] = &[
        ("RUN", "RUN requires at least one argument"),
        ("RUN --network=host", "RUN requires at least one argument"),
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        (
            "ADD",
            "ADD requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        ("ENV", "ENV requires at least one argument"),
        ("ENV a", "ENV must have two arguments"),
        ("LABEL a", "LABEL must have two arguments"),
        (
            "ENV a=1 b",
            "Syntax error - can't find = in \"b\". Must be of the form: name=value",
        ),
        ("ENV =x", "ENV names can not be blank"),
        ("ARG", "ARG requires at least one argument"),
        ("ARG =x", "ARG names can not be blank"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        (
            r#"VOLUME ["/a", " "]"#,
            "VOLUME specified can not be an empty string",
        ),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("SHELL", "SHELL requires at least one argument"),
        ("SHELL []", "SHELL requires at least one argument"),
        (
            "SHELL /bin/bash -c",
            "SHELL requires the arguments to be in JSON form",
        ),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        (
            "ONBUILD ONBUILD RUN x",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        (
            "ONBUILD maintainer x",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK FOO x",
            "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --interval=xyz CMD a",
            "time: invalid duration \"xyz\"",
        ),
        (
            "HEALTHCHECK --interval=5 CMD a",
            "time: missing unit in duration \"5\"",
        ),
        (
            "HEALTHCHECK --timeout=10us CMD a",
            "Interval \"timeout\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD a",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --retries=x CMD a",
            "strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
        (
            "HEALTHCHECK --retries=99999999999 CMD a",
            "strconv.ParseInt: parsing \"99999999999\": value out of range",
        ),
        ("RUN --foo=bar x", "unknown flag: --foo"),
        (
            "RUN --mont=type=cache x",
            "unknown flag: --mont (did you mean mount?)",
        ),
        ("RUN --network=bridge x", "invalid network mode \"bridge\""),
        ("RUN --security=x y", "security \"x\" is not valid"),
        ("COPY --chown a b", "missing a value on flag: --chown"),
        (
            "COPY --link=maybe a b",
            "expecting boolean value for flag --link, not: maybe",
        ),
        (
            "COPY --from=a --from=b x y",
            "duplicate flag specified: --from",
        ),
        ("COPY --checksum=sha256:x a b", "unknown flag: --checksum"),
        ("ADD --from=x a b", "unknown flag: --from"),
        ("ENV --x=1 a=b", "unknown flag: --x"),
        ("USER --x=1 a", "unknown flag: --x"),
        (
            "COPY a <<EOF\nx\nEOF",
            "COPY cannot accept a heredoc as a destination",
        ),
    ];
    for &(text, want) in cases {
        let e = err(&format!("FROM a\n{text}\n"));
        assert_eq!(e.message, want, "{text:?}");
        assert_eq!(e.line, 2, "{text:?}");
    }
}

#[test]
fn file_level_errors() {
    let cases: &[(&str, &str, usize)] = &[
        ("", "file with no instructions", 1),
        ("\n\n# just a comment\n", "file with no instructions", 3),
        ("RUN x\n", "no build stage in current context", 1),
        (
            "ARG A\nENV x=y\nFROM a\n",
            "no build stage in current context",
            2,
        ),
        ("FROM\n", "FROM requires either one or three arguments", 1),
        (
            "FROM a b\n",
            "FROM requires either one or three arguments",
            1,
        ),
        (
            "FROM a AS b c\n",
            "FROM requires either one or three arguments",
            1,
        ),
        (
            "FROM a AS 1st\n",
            "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
            1,
        ),
        (
            "FROM a AS b$c\n",
            "invalid name for build stage: \"b$c\", name can't start with a number or contain symbols",
            1,
        ),
        (
            "FROM --platfom=x a\n",
            "unknown flag: --platfom (did you mean platform?)",
            1,
        ),
        (
            "# escape=x\nFROM a\n",
            "invalid escape token 'x' does not match ` or \\",
            1,
        ),
        (
            "# escape=`\n# escape=\\\nFROM a\n",
            "only one escape parser directive can be used",
            2,
        ),
        ("FROM a\nRUN <<EOF\nno end\n", "unterminated heredoc", 2),
        (
            "FROM a\nRUN x\nCOPY <<A <<B /d/\nx\nA\ny\n",
            "unterminated heredoc",
            3,
        ),
    ];
    for &(text, want, line) in cases {
        let e = err(text);
        assert_eq!(e.message, want, "{text:?}");
        assert_eq!(e.line, line, "{text:?}");
    }
}

#[test]
fn from_lines_and_meta_args() {
    let d = ok(
        "ARG TAG=latest\nARG A B=\"x y\"\nFROM --platform=$BUILDPLATFORM img:${TAG} AS Builder\nRUN x\nfrom b as Final-1.x\n",
    );
    assert_eq!(d.meta_args.len(), 2);
    assert_eq!(
        d.meta_args[1].value,
        vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("\"x y\"".into())
            },
        ]
    );
    assert_eq!(d.meta_args[1].line, 2);
    assert_eq!(d.stages.len(), 2);
    let f = &d.stages[0].from;
    assert_eq!(f.value.image, "img:${TAG}");
    assert_eq!(f.value.name.as_deref(), Some("builder"));
    assert_eq!(f.value.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(f.line, 3);
    assert_eq!(
        f.original,
        "FROM --platform=$BUILDPLATFORM img:${TAG} AS Builder"
    );
    assert_eq!(d.stages[0].instructions.len(), 1);
    assert_eq!(d.stages[1].from.value.name.as_deref(), Some("final-1.x"));
    assert_eq!(d.stages[1].from.value.platform, None);
    assert!(d.stages[1].instructions.is_empty());
}

#[test]
fn env_label_arg() {
    let cases: &[(&str, Instruction)] = &[
        ("ENV A 1", Instruction::Env(pairs(&[("A", "1")]))),
        (
            "ENV A hello   big world",
            Instruction::Env(pairs(&[("A", "hello   big world")])),
        ),
        (
            "ENV A=1 B=2",
            Instruction::Env(pairs(&[("A", "1"), ("B", "2")])),
        ),
        (
            r#"ENV A="a b" B='c d' C=e\ f D="q\"q""#,
            Instruction::Env(pairs(&[
                ("A", "\"a b\""),
                ("B", "'c d'"),
                ("C", "e\\ f"),
                ("D", "\"q\\\"q\""),
            ])),
        ),
        (
            "ENV A= B=x",
            Instruction::Env(pairs(&[("A", ""), ("B", "x")])),
        ),
        ("ENV A=x=y", Instruction::Env(pairs(&[("A", "x=y")]))),
        (
            "LABEL 키=\"값\" org.opencontainers.image.title=\"제목 있음\"",
            Instruction::Label(pairs(&[
                ("키", "\"값\""),
                ("org.opencontainers.image.title", "\"제목 있음\""),
            ])),
        ),
        (
            "LABEL \"quoted key\"=v",
            Instruction::Label(pairs(&[("\"quoted key\"", "v")])),
        ),
        (
            "LABEL version 1.0",
            Instruction::Label(pairs(&[("version", "1.0")])),
        ),
        (
            "ARG A B=1 C=\"x y\"",
            Instruction::Arg(vec![
                ArgDecl {
                    name: "A".into(),
                    default: None,
                },
                ArgDecl {
                    name: "B".into(),
                    default: Some("1".into()),
                },
                ArgDecl {
                    name: "C".into(),
                    default: Some("\"x y\"".into()),
                },
            ]),
        ),
        (
            "ARG E=",
            Instruction::Arg(vec![ArgDecl {
                name: "E".into(),
                default: Some(String::new()),
            }]),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(&one(line), want, "{line:?}");
    }
}

#[test]
fn copy_and_add() {
    let Instruction::Copy(c) = one(
        "COPY --from=build --chown=1:2 --chmod=0755 --link --parents=false --exclude=*.md --exclude=.git a b /dst/",
    ) else {
        panic!("not COPY")
    };
    assert_eq!(c.sources, s(&["a", "b"]));
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link);
    assert!(!c.parents);
    assert_eq!(c.exclude, s(&["*.md", ".git"]));
    let Instruction::Copy(c) = one(r#"COPY ["a b", "c d/"]"#) else {
        panic!("not COPY")
    };
    assert_eq!(c.sources, s(&["a b"]));
    assert_eq!(c.dest, "c d/");
    let Instruction::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tar.gz /z")
    else {
        panic!("not ADD")
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(a.keep_git_dir);
    assert!(!a.link);
    assert_eq!(a.sources, s(&["https://x/y.tar.gz"]));
}

#[test]
fn healthcheck() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one("healthcheck none"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one(
            "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0s --start-interval=2s --retries=3 CMD curl -f http://x/ || exit 1"
        ),
        Instruction::Healthcheck(Healthcheck::Check {
            command: Command::Shell("curl -f http://x/ || exit 1".into()),
            interval: Some(Duration::from_secs(90)),
            timeout: Some(Duration::from_millis(500)),
            start_period: None,
            start_interval: Some(Duration::from_secs(2)),
            retries: Some(3),
        })
    );
    assert_eq!(
        one(r#"HEALTHCHECK CMD ["/bin/check", "-q"]"#),
        Instruction::Healthcheck(Healthcheck::Check {
            command: Command::Exec(s(&["/bin/check", "-q"])),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
}

#[test]
fn comments_continuations_and_originals() {
    let text = "# leading comment\n\nFROM a\n  # indented comment\nRUN apt-get update && \\\n    # a comment inside\n    apt-get install -y x \\\n\n    && echo done\nRUN echo '#not a comment'\nRUN echo a \\\\\nRUN b\n";
    let d = ok(text);
    let i = &d.stages[0].instructions;
    assert_eq!(i.len(), 4, "{i:?}");
    assert_eq!(
        i[0].value,
        Instruction::Run(Run {
            command: Command::Shell(
                "apt-get update &&     apt-get install -y x     && echo done".into()
            ),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    assert_eq!(
        i[0].original,
        "RUN apt-get update &&     apt-get install -y x     && echo done"
    );
    assert_eq!((i[0].line, i[0].end_line), (5, 9));
    assert_eq!((i[1].line, i[1].end_line), (10, 10));
    // An escaped escape at the end is no continuation.
    assert_eq!(i[2].original, "RUN echo a \\\\");
    assert_eq!(i[2].line, 11);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains("empty continuation line"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn continuation_at_eof_and_crlf_and_bom() {
    let d = ok("\u{feff}FROM a\r\nRUN a \\\r\n  b\r\nRUN c \\");
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].original, "RUN a   b");
    assert_eq!(i[1].original, "RUN c");
    assert_eq!(
        i[1].value,
        Instruction::Run(Run {
            command: Command::Shell("c".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
}

#[test]
fn directives() {
    let d = ok(
        "# Syntax = docker/dockerfile:1\n#check=skip=all\n#  ESCAPE=`\nFROM mcr.microsoft.com/windows\nRUN dir C:\\Windows `\n  C:\\Temp\nCOPY a.txt C:\\dest\\\nWORKDIR C:\\app\n",
    );
    assert_eq!(d.directives.escape, '`');
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("syntax") && w.contains("ignored"))
    );
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].original, "RUN dir C:\\Windows   C:\\Temp");
    let Instruction::Copy(c) = &i[1].value else {
        panic!("not COPY")
    };
    assert_eq!(c.dest, "C:\\dest\\");
    assert_eq!(i[2].value, Instruction::Workdir("C:\\app".into()));
    // Not directives once something else was seen.
    for text in [
        "\n# escape=`\nFROM a\nRUN a \\\n b\n",
        "# a comment\n# escape=`\nFROM a\nRUN a \\\n b\n",
        "FROM a\n# escape=`\nRUN a \\\n b\n",
        "# unknown=1\n# escape=`\nFROM a\nRUN a \\\n b\n",
    ] {
        let d = ok(text);
        assert_eq!(d.directives.escape, '\\', "{text:?}");
        assert_eq!(d.stages[0].instructions[0].original, "RUN a  b", "{text:?}");
    }
    let d = ok("#escape=\\\nFROM a\n");
    assert_eq!(d.directives.escape, '\\');
    assert_eq!(d.directives.syntax, None);
}

#[test]
fn heredocs() {
    let d = ok(
        "FROM a\nRUN <<EOF\necho $HOME\n  indented\nEOF\nRUN <<-\"END\" cat > /x\n\t\ttabbed\n\tEND\nCOPY <<A <<'B' /dir/\nfirst\nA\nsecond $X\nB\nRUN python3 <<EOF > out\nprint(1)\nEOF\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\n",
    );
    let i = &d.stages[0].instructions;
    assert_eq!(i.len(), 5, "{i:?}");
    let Instruction::Run(r) = &i[0].value else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo $HOME\n  indented\n".into(),
            expand: true
        }]
    );
    assert_eq!((i[0].line, i[0].end_line), (2, 5));
    let Instruction::Run(r) = &i[1].value else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("<<-\"END\" cat > /x".into()));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "END".into(),
            content: "tabbed\n".into(),
            expand: false
        }]
    );
    let Instruction::Copy(c) = &i[2].value else {
        panic!()
    };
    assert_eq!(c.sources, s(&["<<A", "<<'B'"]));
    assert_eq!(c.dest, "/dir/");
    assert_eq!(
        c.heredocs,
        vec![
            Heredoc {
                name: "A".into(),
                content: "first\n".into(),
                expand: true
            },
            Heredoc {
                name: "B".into(),
                content: "second $X\n".into(),
                expand: false
            },
        ]
    );
    assert_eq!((i[2].line, i[2].end_line), (9, 13));
    let Instruction::Run(r) = &i[3].value else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].content, "print(1)\n");
    let Instruction::Run(r) = &i[4].value else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    assert_eq!(i[4].line, 17);
}

#[test]
fn heredoc_bodies_are_not_instructions() {
    let d = ok("FROM a\nRUN <<EOF\nFROM evil\n# not a comment \\\nRUNN\nEOF\nRUN ok\n");
    let i = &d.stages[0].instructions;
    assert_eq!(d.stages.len(), 1);
    assert_eq!(i.len(), 2);
    let Instruction::Run(r) = &i[0].value else {
        panic!()
    };
    assert_eq!(
        r.heredocs[0].content,
        "FROM evil\n# not a comment \\\nRUNN\n"
    );
}

#[test]
fn onbuild_triggers() {
    let d = ok("FROM a\nONBUILD RUN <<EOF\nmake\nEOF\nONBUILD COPY --chown=1 . /src\n");
    let i = &d.stages[0].instructions;
    assert_eq!(
        i[0].value,
        Instruction::Onbuild("RUN <<EOF\nmake\nEOF".into())
    );
    assert_eq!(
        i[1].value,
        Instruction::Onbuild("COPY --chown=1 . /src".into())
    );
    let Instruction::Onbuild(t) = &i[0].value else {
        panic!()
    };
    let parsed = parse_instruction(t, '\\').expect("trigger");
    let Instruction::Run(r) = parsed.value else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "make\n");
    assert_eq!((parsed.line, parsed.end_line), (1, 3));
    let parsed = parse_instruction("COPY --chown=1 . /src", '\\').expect("trigger");
    let Instruction::Copy(c) = parsed.value else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1"));
    let e = parse_instruction("FROM x", '\\').expect_err("FROM");
    assert_eq!(e.message, "FROM isn't allowed as an ONBUILD trigger");
    let e = parse_instruction("MAINTAINER x", '\\').expect_err("MAINTAINER");
    assert_eq!(e.message, "MAINTAINER isn't allowed as an ONBUILD trigger");
    let e = parse_instruction("onbuild RUN x", '\\').expect_err("ONBUILD");
    assert!(e.message.starts_with("Chaining ONBUILD"));
    let e = parse_instruction("RUN a\nRUN b", '\\').expect_err("two");
    assert_eq!(e.message, "onbuild trigger should be a single expression");
    let e = parse_instruction("RUNX a", '\\').expect_err("unknown");
    assert_eq!(e.message, "unknown instruction: RUNX (did you mean RUN?)");
    let parsed = parse_instruction("RUN dir `\n C:\\x", '`').expect("backtick");
    assert_eq!(parsed.original, "RUN dir  C:\\x");
}

#[test]
fn keywords_are_case_insensitive_and_maintainer_warns() {
    let d = ok("from a\nrun x\nMaInTaInEr me\ncOpY a b\n");
    let i = &d.stages[0].instructions;
    assert_eq!(i.len(), 3);
    assert_eq!(i[0].original, "run x");
    assert!(d.warnings.iter().any(|w| w.contains("MAINTAINER")));
}

#[test]
fn multibyte_text_everywhere() {
    let d = ok(
        "FROM 이미지\nLABEL 키=\"값\"\nRUN echo 안녕 \\\n  세계\nENV 이름 값 있음\nCOPY --chown=사용자 원본 /대상/\n",
    );
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].value, Instruction::Label(pairs(&[("키", "\"값\"")])));
    assert_eq!(i[1].original, "RUN echo 안녕   세계");
    assert_eq!(i[2].value, Instruction::Env(pairs(&[("이름", "값 있음")])));
    let e = err("FROM a\n명령 x\n");
    assert_eq!(e.message, "unknown instruction: 명령");
    let e = err("FROM a\nRUN --플래그=x y\n");
    assert_eq!(e.message, "unknown flag: --플래그");
}

#[test]
fn never_panics_on_odd_inputs() {
    let inputs = [
        "\\",
        "`",
        "FROM a\n\\",
        "FROM a\nRUN <<",
        "FROM a\nRUN <<-",
        "FROM a\nRUN <<\"",
        "FROM a\nRUN <<'EOF\nEOF",
        "FROM a\nCOPY <<E E\nE",
        "# escape=`\n`",
        "FROM a\nHEALTHCHECK --interval=9999999999999h CMD x",
        "FROM a\nENV \"",
        "FROM a\nLABEL =",
        "FROM a\nRUN --",
        "FROM a\nRUN -- x",
        "\u{feff}",
        "\r\n\r\n",
        "FROM a\nRUN [\"\\ud800\"]",
        "FROM a\nONBUILD",
        "FROM a\nONBUILD RUN <<X\n",
        "é\\\né",
        "FROM a AS é",
        "FROM a\nCOPY --from= a b",
        "FROM a\nRUN 2<<EOF\nx\nEOF",
        "FROM a\nRUN <<EOF <<EOF\n1\nEOF\n2\nEOF",
    ];
    for text in inputs {
        let _ = parse("f", text);
        let _ = parse_instruction(text, '\\');
        let _ = parse_instruction(text, '`');
    }
}

/// A cheap stand-in for the fuzz target in `cargo test`: random splices
/// of Dockerfile fragments through every entry point.
#[test]
fn random_fragments_never_panic() {
    const FRAGS: &[&str] = &[
        "FROM a",
        "FROM a AS b",
        "RUN ",
        "COPY ",
        "ADD ",
        "ONBUILD ",
        "ENV ",
        "LABEL ",
        "ARG ",
        "HEALTHCHECK ",
        "CMD ",
        "SHELL ",
        "\n",
        "\r\n",
        " ",
        "\t",
        "\\",
        "`",
        "#",
        "# escape=`",
        "# syntax=x",
        "<<",
        "<<-",
        "EOF",
        "\"",
        "'",
        "$",
        "${",
        "}",
        ":-",
        "#",
        "%",
        "/",
        "//",
        "*",
        "?",
        "[",
        "]",
        ",",
        "=",
        "--mount=",
        "--from=",
        "--link",
        "--interval=",
        "1m30s",
        "키",
        "값",
        "é",
        "\u{feff}",
        "\u{a0}",
        "CMD",
        "NONE",
        "\t\tEOF",
        "2<<E",
        "E",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let env = |n: &str| (n == "A").then(|| "a b".to_string());
    for _ in 0..20_000 {
        let n = (next() % 24) as usize;
        let text: String = (0..n)
            .map(|_| FRAGS[(next() % FRAGS.len() as u64) as usize])
            .collect();
        if let Ok(d) = parse("f", &text) {
            for st in &d.stages {
                for i in &st.instructions {
                    if let Instruction::Onbuild(t) = &i.value {
                        let _ = parse_instruction(t, d.directives.escape);
                    }
                }
            }
        }
        let _ = parse_instruction(&text, '`');
        let _ = crate::dockerfile::shell::expand_word(&text, '\\', &env);
        let _ = crate::dockerfile::shell::expand_words(&text, '`', &env);
        let _ = crate::dockerfile::shell::expand_heredoc(&text, '\\', &env);
    }
}
