//! The one error type of the CLI: a message printed as `Error: <message>`.

use std::fmt;

/// A failure of a command, already phrased for the user as `<what> (<where>)`.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the source error contained.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl From<swu::Error> for Failure {
    fn from(e: swu::Error) -> Self {
        Failure(e.to_string())
    }
}
