//! One of slipway's recipes: written to its cache directory, then run.

use super::Cx;
use crate::model::Error;
use crate::plan::Recipe;
use crate::run::provision;

pub fn run(cx: &Cx, s: &Recipe) -> Result<(), Error> {
    let (stage, recipe) = (cx.stage, &s.recipe);
    let r = crate::tools::provision::recipe_named(recipe)
        .ok_or_else(|| Error::new(stage, format!("no recipe named {recipe}")))?;
    let cache = crate::tools::provision::cache_root()
        .ok_or_else(|| Error::new(stage, "HOME is not set: no cache for slipway's recipes"))?;
    provision::materialize(r, &cache)
        .map_err(|e| Error::new(stage, format!("cannot write recipe {recipe}: {e}")))?;
    cx.run_step_cmd(&s.cmd, cx.deadline)
}
