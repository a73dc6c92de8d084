//! Where `${VAR}` values and secret values come from: the process environment first,
//! then the pipeline's dotenv file.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct Vars {
    process: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
}

impl Vars {
    pub fn new(process: BTreeMap<String, String>, file: BTreeMap<String, String>) -> Vars {
        Vars { process, file }
    }

    /// The process environment plus `env_file` when it exists.
    pub fn load(env_file: &Path) -> Result<Vars, String> {
        let process = std::env::vars().collect();
        let file = read_env_file(env_file)?;
        Ok(Vars { process, file })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.process
            .get(name)
            .or_else(|| self.file.get(name))
            .map(String::as_str)
    }
}

/// Read a dotenv file; a missing file is empty, a malformed one is an error that
/// names the file and the line — never the value.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    if !path.is_file() {
        return Err(format!("env file {} is not a regular file", path.display()));
    }
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| format!("cannot read env file {}: {}", path.display(), io_only(&e)))?;
    let mut out = BTreeMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| match e {
            dotenvy::Error::LineParse(_, index) => {
                format!(
                    "env file {}: cannot parse it (at byte {index} of a line; expected KEY=VALUE)",
                    path.display()
                )
            }
            other => format!("env file {}: {}", path.display(), io_only(&other)),
        })?;
        out.insert(k, v);
    }
    Ok(out)
}

/// An error's text, unless it could quote the file's content.
fn io_only(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::EnvVar(v) => v.to_string(),
        _ => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_located_but_never_quoted() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join(".env");
        std::fs::write(&f, "OK=1\nSAMPLE_API_TOKEN: s3cr3t-value-x\n").unwrap();
        let e = read_env_file(&f).unwrap_err();
        assert!(e.contains(".env"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
