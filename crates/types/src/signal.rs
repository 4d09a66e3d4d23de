//! Linux signals by name and number, as docker, runc and kubectl spell them
//! (`TERM`, `SIGTERM`, `15`, `RTMIN+3`): one parser for the whole project.

use std::fmt;
use std::str::FromStr;

/// A signal number (1..=64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Names of the classic signals, indexed by number (x86_64 and aarch64
/// share them).
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The first real-time signal as the kernel numbers it (glibc reserves
/// 32 and 33; docker's tables start SIGRTMIN at 34).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// A signal name or number that is not a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSignal(pub String);

impl fmt::Display for InvalidSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid signal: {}", self.0)
    }
}

impl std::error::Error for InvalidSignal {}

impl Signal {
    /// SIGHUP.
    pub const HUP: Signal = Signal(1);
    /// SIGINT.
    pub const INT: Signal = Signal(2);
    /// SIGKILL.
    pub const KILL: Signal = Signal(9);
    /// SIGTERM.
    pub const TERM: Signal = Signal(15);
    /// SIGWINCH.
    pub const WINCH: Signal = Signal(28);

    /// The signal with number `n`.
    pub fn from_number(n: i32) -> Result<Signal, InvalidSignal> {
        if (1..=RTMAX).contains(&n) {
            Ok(Signal(n))
        } else {
            Err(InvalidSignal(n.to_string()))
        }
    }

    /// Its number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Its name with the `SIG` prefix (`SIGTERM`, `SIGRTMIN+3`).
    pub fn name(self) -> String {
        let n = self.0;
        match usize::try_from(n).ok().and_then(|i| NAMES.get(i)) {
            Some(s) if !s.is_empty() => format!("SIG{s}"),
            _ if n == RTMIN => "SIGRTMIN".into(),
            _ if n == RTMAX => "SIGRTMAX".into(),
            _ if n > RTMIN && n < RTMAX => format!("SIGRTMIN+{}", n - RTMIN),
            _ => n.to_string(),
        }
    }
}

impl FromStr for Signal {
    type Err = InvalidSignal;

    /// `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+3`, `SIGRTMAX-2`.
    fn from_str(s: &str) -> Result<Signal, InvalidSignal> {
        let bad = || InvalidSignal(s.to_owned());
        if let Ok(n) = s.parse::<i32>() {
            return Signal::from_number(n).map_err(|_| bad());
        }
        let up = s.to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        if let Some(i) = NAMES.iter().position(|x| !x.is_empty() && *x == name) {
            return Ok(Signal(i as i32));
        }
        match name {
            "IOT" => return Ok(Signal(6)),
            "POLL" => return Ok(Signal(29)),
            "RTMIN" => return Ok(Signal(RTMIN)),
            "RTMAX" => return Ok(Signal(RTMAX)),
            _ => {}
        }
        let offset = |rest: &str| rest.parse::<i32>().ok().filter(|k| (1..=30).contains(k));
        if let Some(k) = name.strip_prefix("RTMIN+").and_then(offset) {
            return Ok(Signal(RTMIN + k));
        }
        if let Some(k) = name.strip_prefix("RTMAX-").and_then(offset) {
            return Ok(Signal(RTMAX - k));
        }
        Err(bad())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!("TERM".parse::<Signal>().unwrap(), Signal::TERM);
        assert_eq!("SIGKILL".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!("hup".parse::<Signal>().unwrap().number(), 1);
        assert_eq!("10".parse::<Signal>().unwrap().name(), "SIGUSR1");
        assert_eq!("RTMIN+1".parse::<Signal>().unwrap().number(), 35);
        assert_eq!("SIGRTMAX-2".parse::<Signal>().unwrap().number(), 62);
        assert_eq!(Signal(35).name(), "SIGRTMIN+1");
        assert_eq!(Signal(64).name(), "SIGRTMAX");
        assert_eq!(Signal(6).name(), "SIGABRT");
        for bad in [
            "NOPE", "99", "0", "-1", "", "SIG", "RTMIN+31", "SIGé", "TERMé",
        ] {
            assert!(bad.parse::<Signal>().is_err(), "{bad}");
        }
        for n in 1..=64 {
            let s = Signal(n);
            assert_eq!(s.name().parse::<Signal>().unwrap(), s, "{}", s.name());
        }
    }
}
