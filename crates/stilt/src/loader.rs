//! The engine's Tiltfile loader, backed by `stilt-tiltfile`.

use std::path::Path;
use stilt_engine::Mode;
use stilt_engine::tiltfile::{LoadFailure, Loaded, Loader, Settings};

pub struct StarlarkLoader {
    pub web_host: String,
    /// `TILT_PORT` of `local()` commands.
    pub web_port: u16,
    pub start_time: String,
}

fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    crate::objects::parse_duration(s).ok()
}

impl Loader for StarlarkLoader {
    fn load(
        &self,
        path: &Path,
        args: &[String],
        mode: Mode,
        cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Loaded, LoadFailure> {
        let host = stilt_tiltfile::RealHost::new();
        let mut req = stilt_tiltfile::LoadRequest::new(path, &host);
        req.args = args.to_vec();
        req.subcommand = match mode {
            Mode::Up => "up".into(),
            Mode::Ci => "ci".into(),
        };
        req.watch = mode == Mode::Up;
        req.web_host = self.web_host.clone();
        req.web_port = self.web_port;
        req.start_time = Some(self.start_time.clone());
        req.argv = std::env::args().collect();
        req.cancel = Some(cancel);
        req.ext_cache = Some(stilt_extrepo::Cache::in_home(&crate::home::stilt_home()));
        match stilt_tiltfile::load(&req) {
            Ok(r) => {
                tracing::debug!("Tiltfile load phases: {:?}", r.timings);
                Ok(Loaded {
                    objects: r.objects,
                    config_files: r.config_files,
                    resources: r.resources,
                    logs: r.logs,
                    warnings: r.warnings,
                    secrets: if r.settings.secrets_scrub {
                        r.settings.secrets.clone()
                    } else {
                        vec![]
                    },
                    settings: Settings {
                        max_parallel_updates: usize::try_from(r.settings.max_parallel_updates)
                            .ok()
                            .filter(|n| *n > 0),
                        ci_timeout: parse_go_duration(&r.settings.ci_timeout),
                        default_registry: r
                            .settings
                            .default_registry
                            .as_ref()
                            .map(|d| d.host.clone())
                            .filter(|h| !h.is_empty()),
                    },
                })
            }
            Err(e) => Err(LoadFailure {
                message: e.message,
                config_files: e.config_files,
                logs: e.logs,
                secrets: e.secrets,
            }),
        }
    }
}
