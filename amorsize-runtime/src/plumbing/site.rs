//! [`CallSite`]: where a pipeline was written (the plan cache's key, the logs' label).

use std::fmt;
use std::panic::Location;

use crate::options::Config;

/// Where a pipeline was written, and what the attribute that wrote it said.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallSite {
    pub location: &'static Location<'static>,
    pub config: Option<&'static Config>,
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.config {
            write!(f, "{} ", c.function)?;
        }
        write!(
            f,
            "{}:{}:{}",
            self.location.file(),
            self.location.line(),
            self.location.column()
        )
    }
}
