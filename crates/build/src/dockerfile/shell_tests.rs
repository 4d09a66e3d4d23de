use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("hello".into()),
        "EMPTY" => Some(String::new()),
        "SP" => Some("a b  c".into()),
        "PATHV" => Some("/usr/local/bin/app.tar.gz".into()),
        "K" => Some("값".into()),
        "_u1" => Some("under".into()),
        _ => None,
    }
}

fn word(w: &str) -> Result<String, ShellError> {
    expand_word(w, '\\', &env)
}

#[test]
fn expand_word_table() {
    let cases: &[(&str, &str)] = &[
        ("plain", "plain"),
        ("$A", "hello"),
        ("${A}", "hello"),
        ("x$A.y", "xhello.y"),
        ("${A}world", "helloworld"),
        ("$Aworld", ""),
        ("$_u1", "under"),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$/x", "$/x"),
        ("$ x", "$ x"),
        ("$1", ""),
        ("'$A'", "$A"),
        ("\"$A\"", "hello"),
        ("\"'$A'\"", "'hello'"),
        ("\\$A", "$A"),
        ("\"\\$A\"", "$A"),
        ("\"a\\\"b\"", "a\"b"),
        ("\"a\\b\"", "a\\b"),
        ("\"a\\\\b\"", "a\\b"),
        ("a\\ b", "a b"),
        ("a\\", "a"),
        ("'a\\b'", "a\\b"),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${UNSET-def}", "def"),
        ("${A:-def}", "hello"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$A}", "hello"),
        ("${UNSET:-${A}x}", "hellox"),
        ("${UNSET:-${UNSET2:-deep}}", "deep"),
        ("${UNSET:-a b}", "a b"),
        ("${UNSET:-'q}'}", "q}"),
        ("${UNSET:-\\}}", "}"),
        ("${A?err}", "hello"),
        ("${PATHV#*/}", "usr/local/bin/app.tar.gz"),
        ("${PATHV##*/}", "app.tar.gz"),
        ("${PATHV%.*}", "/usr/local/bin/app.tar"),
        ("${PATHV%%.*}", "/usr/local/bin/app"),
        ("${PATHV%.g?}", "/usr/local/bin/app.tar"),
        ("${A/l/L}", "heLlo"),
        ("${A//l/L}", "heLLo"),
        ("${A/l*/X}", "heX"),
        ("${A/\\//X}", "hello"),
        ("${UNSET/a/b}", ""),
        ("${K}이", "값이"),
        ("키=${K}", "키=값"),
        ("\"${SP}\"", "a b  c"),
        ("<<EOF", "<<EOF"),
    ];
    for &(input, want) in cases {
        assert_eq!(word(input).as_deref(), Ok(want), "input {input:?}");
    }
}

#[test]
fn expand_word_errors() {
    let cases: &[(&str, &str)] = &[
        ("${A", "missing '}'"),
        ("${", "missing '}'"),
        ("${A:-x", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${{A}}", "bad substitution"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${UNSET?custom message}", "UNSET: custom message"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${UNSET:?gone}", "UNSET: gone"),
        ("${A:#x}", "unsupported modifier (:#)"),
        ("${A:x}", "unsupported modifier (:x)"),
        ("${A!}", "unsupported modifier (!)"),
        ("${A/x}", "missing '/' in ${}"),
        ("${A/x/y", "missing '}'"),
        ("'abc", "matching single-quote"),
        ("\"abc", "matching double-quote"),
        ("${A#\\q}", "invalid pattern"),
    ];
    for &(input, want) in cases {
        let err = word(input).expect_err(input);
        assert!(
            err.to_string().contains(want),
            "input {input:?}: {err} does not contain {want:?}"
        );
        assert!(err.to_string().starts_with("failed to process"), "{err}");
    }
}

#[test]
fn expand_words_table() {
    let cases: &[(&str, &[&str])] = &[
        ("a b c", &["a", "b", "c"]),
        ("  a   b  ", &["a", "b"]),
        ("\"a b\" c", &["a b", "c"]),
        ("'a b' c", &["a b", "c"]),
        ("a\\ b c", &["a b", "c"]),
        ("$SP", &["a", "b", "c"]),
        ("\"$SP\"", &["a b  c"]),
        ("x${A}y z", &["xhelloy", "z"]),
        ("a \"\" b", &["a", "b"]),
        ("", &[]),
        ("80/tcp 443/udp", &["80/tcp", "443/udp"]),
    ];
    for &(input, want) in cases {
        let got = expand_words(input, '\\', &env).expect(input);
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn backtick_escape() {
    let got = expand_word("C:\\path`$A `\"x", '`', &env).expect("expand");
    assert_eq!(got, "C:\\path$A \"x");
    let got = expand_word("\"a`\"b\"", '`', &env).expect("expand");
    assert_eq!(got, "a\"b");
    let got = expand_words("c:\\a` b c:\\d", '`', &env).expect("expand");
    assert_eq!(got, vec!["c:\\a b", "c:\\d"]);
}

#[test]
fn heredoc_expansion() {
    let cases: &[(&str, &str)] = &[
        ("echo $A\n", "echo hello\n"),
        ("echo '$A' \"$A\"\n", "echo 'hello' \"hello\"\n"),
        ("echo \\$A\n", "echo $A\n"),
        ("${UNSET:-x}\n", "x\n"),
        ("no vars\n", "no vars\n"),
        ("it's\n", "it's\n"),
    ];
    for &(input, want) in cases {
        assert_eq!(
            expand_heredoc(input, '\\', &env).as_deref(),
            Ok(want),
            "input {input:?}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "${A:-".repeat(10_000);
    assert!(word(&deep).is_err());
    let deep_closed = format!("{}{}", "${U:-".repeat(200), "}".repeat(200));
    assert!(word(&deep_closed).is_err());
}

#[test]
fn lex_words_raw_modes() {
    let mode = Mode {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Mode::default()
    };
    let words = lex_words("RUN cat <<\"EOF\" $X ${Y:-z} a\\ b", '\\', mode).expect("lex");
    assert_eq!(
        words,
        vec!["RUN", "cat", "<<\"EOF\"", "$X", "${Y:-z}", "a\\ b"]
    );
    let words = lex_words("cat << EOF", '\\', mode).expect("lex");
    assert_eq!(words, vec!["cat", "<< EOF"]);
    assert_eq!(lex_words("'open", '\\', mode), None);
}
