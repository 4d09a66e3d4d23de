//! Where a build's progress goes: text in Docker's classic builder's words
//! (`Step 1/4 : …`, ` ---> Running in …`), the output of RUN steps, and the
//! result's id. The Docker API turns it into its JSON stream; `berth build`
//! prints it.

/// A build's progress.
pub trait Progress {
    /// Text for the user (whole lines, or a RUN step's output as it comes).
    fn stream(&mut self, text: &str);
    /// A warning (`[Warning] …`).
    fn warning(&mut self, text: &str) {
        self.stream(&format!("[Warning] {text}\n"));
    }
    /// The built image's id (`aux.ID` in the JSON stream).
    fn image_id(&mut self, _id: &str) {}
}

/// A [`Progress`] that keeps everything (tests, `-q`).
#[derive(Debug, Default)]
pub struct Collect {
    /// Everything streamed.
    pub text: String,
    /// The id reported.
    pub id: Option<String>,
}

impl Progress for Collect {
    fn stream(&mut self, text: &str) {
        self.text.push_str(text);
    }
    fn image_id(&mut self, id: &str) {
        self.id = Some(id.to_owned());
    }
}

/// The short form of an image or container id docker prints (12 hex
/// digits, without `sha256:`).
pub fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}
