//! A plain command (a Secret's apply gets its digest annotation filled).

use std::borrow::Cow;

use super::Cx;
use crate::model::{Cmd, Error, Stdin};
use crate::plan::Run;

pub fn run(cx: &Cx, s: &Run) -> Result<(), Error> {
    cx.run_step_cmd(&*with_secret_digest(cx, &s.cmd)?, cx.deadline)
}

/// A Secret's apply with its digest annotation filled (other commands as they are).
fn with_secret_digest<'c>(cx: &Cx, cmd: &'c Cmd) -> Result<Cow<'c, Cmd>, Error> {
    let Stdin::Secret(s) = &cmd.stdin else {
        return Ok(Cow::Borrowed(cmd));
    };
    let key = crate::tools::kubectl::SECRET_DIGEST;
    if s.annotations.get(key).map(String::as_str) != Some("{DIGEST}") {
        return Ok(Cow::Borrowed(cmd));
    }
    let mut s = s.clone();
    s.annotations
        .insert(key.to_string(), cx.secret_annotation(&s)?);
    let mut c = cmd.clone();
    c.stdin = Stdin::Secret(s);
    Ok(Cow::Owned(c))
}
