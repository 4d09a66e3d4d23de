//! The Dockerfile parser and Docker's word expansion: any text gives a
//! value or an error, never a panic (both escape characters; ONBUILD
//! triggers parsed again as a child build would).
#![no_main]

use berth_build::dockerfile::{Instruction, parse, parse_instruction, shell};
use libfuzzer_sys::fuzz_target;

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("value with spaces".into()),
        "E" => Some(String::new()),
        "K" => Some("값*?/".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(df) = parse("Dockerfile", s) {
        for stage in &df.stages {
            for ins in &stage.instructions {
                if let Instruction::Onbuild(trigger) = &ins.value {
                    let _ = parse_instruction(trigger, df.directives.escape);
                }
            }
        }
    }
    let _ = parse_instruction(s, '\\');
    for escape in ['\\', '`'] {
        let _ = shell::expand_word(s, escape, &env);
        let _ = shell::expand_words(s, escape, &env);
        let _ = shell::expand_heredoc(s, escape, &env);
    }
});
