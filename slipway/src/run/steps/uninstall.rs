//! `down`: uninstall a release (if installed) and the Secrets slipway made for it.

use super::Cx;
use crate::model::Error;
use crate::plan::Uninstall;

pub fn run(cx: &Cx, s: &Uninstall) -> Result<(), Error> {
    if cx.absent() {
        return Ok(());
    }
    let (release, namespace) = (&s.release, &s.namespace);
    let st = cx
        .ex
        .probe(cx.stage, &s.status, Some(cx.deadline))
        .map_err(|e| e.into_error(cx.stage, &format!("status of {release}")))?;
    if s.installed(&st) {
        cx.run(&s.uninstall, &format!("uninstall {release}"))?;
        cx.note(format!("uninstalled release {release} from {namespace}"));
    } else {
        cx.note(format!(
            "release {release} is not installed in {namespace}: nothing to do"
        ));
    }
    let listed = cx.run(&s.list_secrets, "list the secrets slipway created")?;
    let names = Uninstall::secret_names(&listed.stdout);
    if names.is_empty() {
        cx.note(format!(
            "no secrets slipway created for {release} in {namespace}"
        ));
    } else {
        cx.run(&s.delete_secrets, "delete the secrets slipway created")?;
        cx.note(format!("deleted {}", names.join(", ")));
    }
    Ok(())
}
