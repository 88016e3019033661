//! `local_git_repo(path)` (deprecated in Tilt, still in real Tiltfiles): a repository root
//! whose `.paths(p)` joins `p` onto it.

use std::fmt;
use std::path::PathBuf;

use allocative::Allocative;
use anyhow::bail;
use starlark::any::ProvidesStaticType;
use starlark::environment::GlobalsBuilder;
use starlark::environment::Methods;
use starlark::environment::MethodsBuilder;
use starlark::environment::MethodsStatic;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::NoSerialize;
use starlark::values::StarlarkPagablePanic;
use starlark::values::StarlarkValue;
use starlark::values::starlark_value;

use crate::eval::abs_path;
use crate::eval::cur_dir;

/// Tilt's `git.Repo`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct GitRepo {
    #[allocative(skip)]
    base: PathBuf,
}
starlark_simple_value!(GitRepo);

impl fmt::Display for GitRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[git.Repo] '{}'", self.base.display())
    }
}

#[starlark_value(type = "git.Repo")]
impl<'v> StarlarkValue<'v> for GitRepo {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("git.Repo", repo_methods);
        Some(RES.methods())
    }
}

#[starlark_module]
fn repo_methods(builder: &mut MethodsBuilder) {
    fn paths(this: &GitRepo, #[starlark(require = pos)] path: &str) -> anyhow::Result<String> {
        Ok(abs_path(&this.base, path).to_string_lossy().into_owned())
    }
}

#[starlark_module]
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    /// A local git repository (its `.git` changes are ignored by watches); `.paths(p)` gives paths inside it.
    fn local_git_repo<'v>(
        #[starlark(require = pos)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<GitRepo> {
        let base = abs_path(&cur_dir(eval), path);
        if let Err(e) = std::fs::metadata(&base) {
            bail!("Reading paths {}: {e}", base.display());
        }
        if !base.join(".git").exists() {
            bail!(
                "{} isn't a valid git repo: it doesn't have a .git/ directory",
                base.display()
            );
        }
        Ok(GitRepo { base })
    }
}
