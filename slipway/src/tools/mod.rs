//! One adapter per external tool: functions that build [`Cmd`]s and pure parsers for
//! what the tool prints. Nothing here runs a process.

pub mod docker;
pub mod helm;
pub mod k8s;
pub mod kind;
pub mod kubectl;
pub mod minikube;
pub mod oci;
pub mod provision;
pub mod recipe;
pub mod registry;
pub mod serving;

use std::time::Duration;

pub use crate::model::Cmd;

/// Timeout for quick read-only queries (versions, status, listings).
pub const PROBE: Duration = Duration::from_secs(30);

/// The first `x.y.z` in a tool's version output, as semver.
pub fn parse_version(text: &str) -> Option<semver::Version> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '+')
        .filter_map(|w| {
            let w = w.trim_start_matches('v');
            let core: String = w
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = core.split('.').filter(|s| !s.is_empty());
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            Some(semver::Version::new(major, minor, patch))
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_from_tool_output() {
        let v = |s: &str| parse_version(s).map(|v| v.to_string());
        assert_eq!(
            v("kind v0.30.0 go1.26.8 linux/amd64").as_deref(),
            Some("0.30.0")
        );
        assert_eq!(v("v3.22.0+g1234abc").as_deref(), Some("3.22.0"));
        assert_eq!(v("28.2.2").as_deref(), Some("28.2.2"));
        assert_eq!(
            v("minikube version: v1.34.0\ncommit: abc").as_deref(),
            Some("1.34.0")
        );
        assert_eq!(
            v("\"gitVersion\": \"v1.34.13\",").as_deref(),
            Some("1.34.13")
        );
        assert_eq!(v("no version here"), None);
    }
}
