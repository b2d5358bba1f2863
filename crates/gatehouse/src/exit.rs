//! Exit codes, one place: 0 ok, 1 blocked, 2 error, 130 interrupted.

use std::process::ExitCode;

pub const INTERRUPTED: i32 = 130;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The command did its job and nothing blocks.
    Ok,
    /// A gate, coverage gap or unsafe store blocks the release.
    Blocked,
    /// gatehouse could not do its job.
    Error,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(match code {
            Code::Ok => 0,
            Code::Blocked => 1,
            Code::Error => 2,
        })
    }
}
