//! The conventions of the CI system a plain-output run is logged by. On GitHub Actions
//! (`GITHUB_ACTIONS=true`) each stage is a collapsible `::group::`, every error is an
//! `::error` annotation (with `file`, `line` and `col` for a pipeline-file error), and
//! the stage table is appended to the job summary (`GITHUB_STEP_SUMMARY`). On GitLab CI
//! (`GITLAB_CI=true`) each stage is a collapsible section. `SLIPWAY_CI_LOG` (`github`,
//! `gitlab`, `none`) overrides the detection.
//!
//! Everything here is formatting: the reporter decides when, and hands over text that
//! is already masked.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::Stage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    None,
    GitHub,
    GitLab,
}

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

impl Host {
    pub fn detect() -> Host {
        match std::env::var("SLIPWAY_CI_LOG").as_deref() {
            Ok("github") => return Host::GitHub,
            Ok("gitlab") => return Host::GitLab,
            Ok("none") => return Host::None,
            _ => {}
        }
        if set("GITHUB_ACTIONS") {
            Host::GitHub
        } else if set("GITLAB_CI") {
            Host::GitLab
        } else {
            Host::None
        }
    }

    /// The line that opens a stage's group, if this host folds them.
    pub fn open(self, stage: Stage) -> Option<String> {
        match self {
            Host::None => None,
            Host::GitHub => Some(format!("::group::slipway {}", stage.name())),
            Host::GitLab => Some(format!(
                "\x1b[0Ksection_start:{}:slipway_{}[collapsed=true]\r\x1b[0Kslipway {}",
                unix_now(),
                section(stage),
                stage.name()
            )),
        }
    }

    /// The line that closes it.
    pub fn close(self, stage: Stage) -> Option<String> {
        match self {
            Host::None => None,
            Host::GitHub => Some("::endgroup::".into()),
            Host::GitLab => Some(format!(
                "\x1b[0Ksection_end:{}:slipway_{}\r\x1b[0K",
                unix_now(),
                section(stage)
            )),
        }
    }

    /// Annotations for an error: one per `FILE:LINE:COL: error: …` line of a
    /// pipeline-file error (each with its hint), else one for the whole error.
    pub fn annotations(
        self,
        stage: Option<Stage>,
        message: &str,
        hint: Option<&str>,
    ) -> Vec<String> {
        if self != Host::GitHub {
            return vec![];
        }
        let located = located(message);
        if !located.is_empty() {
            return located
                .into_iter()
                .map(|d| {
                    format!(
                        "::error file={},line={},col={},title={}::{}",
                        property(&in_workspace(&d.file)),
                        d.line,
                        d.col,
                        property("slipway: pipeline file"),
                        data(&with_hint(&d.message, d.hint.as_deref()))
                    )
                })
                .collect();
        }
        let title = match stage {
            Some(s) => format!("slipway: {} failed", s.name()),
            None => "slipway".to_string(),
        };
        vec![format!(
            "::error title={}::{}",
            property(&title),
            data(&with_hint(message, hint))
        )]
    }
}

/// A file as GitHub places annotations: relative to the workspace (the checkout),
/// else to the working directory; a path outside both stays as it is.
fn in_workspace(file: &str) -> String {
    let p = std::path::Path::new(file);
    let roots = std::env::var_os("GITHUB_WORKSPACE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(std::env::current_dir().ok());
    for root in roots {
        if let Ok(rel) = p.strip_prefix(&root) {
            return rel.display().to_string();
        }
    }
    file.to_string()
}

fn with_hint(message: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("{message}\nhint: {h}"),
        None => message.to_string(),
    }
}

/// A section name GitLab accepts (letters, digits, `_`, `.`, `-`).
fn section(stage: Stage) -> String {
    stage
        .name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A workflow command's message (GitHub's escaping of `%`, CR and LF).
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value (also `:` and `,`).
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[derive(Debug, PartialEq)]
struct Located {
    file: String,
    line: usize,
    col: usize,
    message: String,
    hint: Option<String>,
}

/// The diagnostics of a pipeline-file error as `config::Diagnostic` prints them:
/// `FILE:LINE:COL: error: MESSAGE`, optionally followed by `  hint: …`.
fn located(message: &str) -> Vec<Located> {
    let mut out: Vec<Located> = vec![];
    for l in message.lines() {
        if let Some(h) = l.strip_prefix("  hint: ") {
            if let Some(last) = out.last_mut() {
                last.hint = Some(h.to_string());
            }
            continue;
        }
        let Some((head, msg)) = l.split_once(": error: ") else {
            continue;
        };
        let mut parts = head.rsplitn(3, ':');
        let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line), Ok(col)) = (line.parse(), col.parse()) else {
            continue;
        };
        out.push(Located {
            file: file.to_string(),
            line,
            col,
            message: msg.to_string(),
            hint: None,
        });
    }
    out
}

/// The stage table as Markdown, for GitHub's job summary.
pub fn summary_markdown(
    job: &str,
    ok: bool,
    rows: &[(Stage, bool, f64, Vec<String>)],
    total: f64,
) -> String {
    let mut s = format!(
        "### slipway {job}: {}\n\n| stage | result | time | notes |\n| --- | --- | ---: | --- |\n",
        if ok { "succeeded" } else { "failed" }
    );
    for (stage, ok, secs, notes) in rows {
        s.push_str(&format!(
            "| {} | {} | {secs:.1} s | {} |\n",
            stage.name(),
            if *ok { "ok" } else { "**FAILED**" },
            notes
                .iter()
                .map(|n| n.replace('|', "\\|"))
                .collect::<Vec<_>>()
                .join("<br>")
        ));
    }
    s.push_str(&format!("| total | | {total:.1} s | |\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_file_errors_become_located_annotations() {
        let msg = "pipeline.toml:12:5: error: unknown key `imgaes`\n  hint: did you mean `images`?\nsub/p.toml:3:1: error: a, b: c\n2 errors in the pipeline file; nothing was run";
        let a = Host::GitHub.annotations(None, msg, None);
        assert_eq!(
            a,
            [
                "::error file=pipeline.toml,line=12,col=5,title=slipway%3A pipeline file::unknown key `imgaes`%0Ahint: did you mean `images`?",
                "::error file=sub/p.toml,line=3,col=1,title=slipway%3A pipeline file::a, b: c",
            ]
        );
    }

    #[test]
    fn other_errors_are_one_annotation_with_the_stage_and_hint() {
        let a = Host::GitHub.annotations(
            Some(Stage::Smoke),
            "check health: 100% of\r\nrequests failed",
            Some("look"),
        );
        assert_eq!(
            a,
            ["::error title=slipway%3A smoke failed::check health: 100%25 of%0D%0Arequests failed%0Ahint: look"]
        );
        assert!(Host::GitLab.annotations(None, "x", None).is_empty());
        assert!(Host::None.annotations(None, "x", None).is_empty());
    }

    #[test]
    fn groups_and_sections_open_and_close() {
        assert_eq!(
            Host::GitHub.open(Stage::Build).unwrap(),
            "::group::slipway build"
        );
        assert_eq!(Host::GitHub.close(Stage::Build).unwrap(), "::endgroup::");
        let o = Host::GitLab.open(Stage::Build).unwrap();
        assert!(o.starts_with("\x1b[0Ksection_start:"), "{o:?}");
        assert!(
            o.ends_with(":slipway_build[collapsed=true]\r\x1b[0Kslipway build"),
            "{o:?}"
        );
        let c = Host::GitLab.close(Stage::Build).unwrap();
        assert!(
            c.starts_with("\x1b[0Ksection_end:") && c.ends_with(":slipway_build\r\x1b[0K"),
            "{c:?}"
        );
        assert_eq!(Host::None.open(Stage::Build), None);
    }

    #[test]
    fn the_job_summary_is_a_markdown_table() {
        let md = summary_markdown(
            "deploy-local",
            false,
            &[
                (Stage::Build, true, 1.25, vec!["skipped: a|b".into()]),
                (Stage::Smoke, false, 3.0, vec![]),
            ],
            4.3,
        );
        assert_eq!(
            md,
            "### slipway deploy-local: failed\n\n| stage | result | time | notes |\n| --- | --- | ---: | --- |\n| build | ok | 1.2 s | skipped: a\\|b |\n| smoke | **FAILED** | 3.0 s |  |\n| total | | 4.3 s | |\n"
        );
    }
}
