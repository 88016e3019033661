//! `stilt lsp`: the Tiltfile language server (stilt-lsp) on stdio, with the extension cache
//! `stilt up` fills (read, never fetched).

use std::process::ExitCode;
use std::time::Duration;

pub fn lsp(a: crate::args::LspArgs) -> anyhow::Result<ExitCode> {
    let cfg = stilt_lsp::CheckConfig {
        ext_cache: Some(stilt_extrepo::Cache::in_home(&crate::home::stilt_home())),
        extensions_dir: std::env::var_os("STILT_EXTENSIONS_DIR")
            .filter(|d| !d.is_empty())
            .map(Into::into),
        timeout: Duration::from_secs(a.check_timeout.max(1)),
    };
    stilt_lsp::serve_stdio(cfg)?;
    Ok(ExitCode::SUCCESS)
}
