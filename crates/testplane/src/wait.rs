//! Waiting for an expected state: poll a check until it holds, or fail
//! the test after a timeout naming what was awaited (and the last thing
//! seen, when the check says).

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits, in seconds.
pub const DEFAULT_SECS: u64 = 15;

/// How often a check runs.
const INTERVAL: Duration = Duration::from_millis(50);

/// What a check returns: done (with a value) or not yet (with what it
/// saw). Implemented for `bool`, `Option<T>` and `Result<T, String>`.
pub trait Outcome {
    /// The value a finished wait returns.
    type Value;
    /// `Ok(value)` when the awaited state holds, else `Err(last seen)`.
    fn into_result(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

impl<T> Outcome for Result<T, String> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self
    }
}

/// Runs `check` every 50 ms until it reports done, for up to `secs`
/// seconds; panics naming `what` and the last outcome after that.
pub async fn until<O, F, Fut>(secs: u64, what: &str, mut check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await.into_result() {
            Ok(v) => return v,
            Err(last) => {
                if tokio::time::Instant::now() > deadline {
                    panic!("timed out after {secs} s waiting for {what}; last: {last}");
                }
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// [`until`] for [`DEFAULT_SECS`].
pub async fn eventually<O, F, Fut>(what: &str, check: F) -> O::Value
where
    O: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
{
    until(DEFAULT_SECS, what, check).await
}
