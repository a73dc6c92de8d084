//! A duration written as a string in pipeline.toml: "90s", "5m", "1h 30m".

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl Dur {
    /// The longest duration helm and kubectl accept (Go's time.Duration tops out at
    /// 2562047h); anything longer is refused when the pipeline is read.
    pub const MAX: Duration = Duration::from_secs(2_562_047 * 3600);

    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    pub fn parse(s: &str) -> Result<Dur, String> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            format!("invalid duration {s:?} ({e}); write it like \"90s\", \"5m\" or \"1h 30m\"")
        })?;
        if d.is_zero() {
            return Err(format!(
                "duration {s:?} is zero; give a positive duration like \"30s\""
            ));
        }
        if d > Self::MAX {
            return Err(format!(
                "duration {s:?} is longer than the 2562047h helm and kubectl accept"
            ));
        }
        Ok(Dur(d))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(Dur::parse("90s").unwrap(), Dur::secs(90));
        assert!(Dur::parse("0s").is_err());
        assert!(Dur::parse("18446744073709551600s").is_err());
        assert!(Dur::parse("2562048h").is_err());
        assert!(Dur::parse("2562047h").is_ok());
    }
}
