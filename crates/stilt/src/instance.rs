//! One `stilt up` per web port and Stilt home: the lock that keeps a second instance from
//! clobbering the first, the record of the running instance, and how clients pick the instance
//! they talk to (`--port`, `STILT_PORT` / `TILT_PORT`, else the newest instance).

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use stilt_apiserver::{CONTEXT, Kubeconfig};

/// Tilt's default web port; its instance keeps the plain context name `stilt`.
pub const DEFAULT_PORT: u16 = 10350;

/// The kubeconfig context of the instance serving the web UI on `port`.
pub fn context_name(port: u16) -> String {
    if port == DEFAULT_PORT {
        CONTEXT.to_string()
    } else {
        format!("{CONTEXT}-{port}")
    }
}

static SELECTED_PORT: OnceLock<Option<u16>> = OnceLock::new();

/// Records the instance the client commands of this process address (`None`: the newest one).
pub fn select(port: Option<u16>) {
    let _ = SELECTED_PORT.set(port);
}

/// The context client commands use: the selected port's, else the kubeconfig's current one.
pub fn selected_context() -> Option<String> {
    SELECTED_PORT.get().copied().flatten().map(context_name)
}

fn instances_dir(home: &Path) -> PathBuf {
    home.join("instances")
}

fn record_path(home: &Path, port: u16) -> PathBuf {
    instances_dir(home).join(format!("{port}.json"))
}

/// Runs `f` while holding the lock that serialises writers of the shared kubeconfig file.
fn with_config_lock<T>(home: &Path, f: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    let path = home.join("config.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let _held = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking {}: {e}", path.display()))?;
    Ok(f()?)
}

/// The exclusive claim of one web port in one Stilt home, held for the life of `stilt up`/`ci`.
/// The kernel drops the lock when the process dies, however it dies.
pub struct InstanceLock {
    _lock: Flock<File>,
    home: PathBuf,
    port: u16,
    published: bool,
}

impl InstanceLock {
    /// Claims `port`, or says which running instance holds it.
    pub fn acquire(home: &Path, port: u16) -> Result<Self> {
        let dir = instances_dir(home);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{port}.lock"));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Self {
                _lock: lock,
                home: home.to_path_buf(),
                port,
                published: false,
            }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!("{}", Self::holder(home, port)),
            Err((_, e)) => bail!("locking {}: {e}", path.display()),
        }
    }

    fn holder(home: &Path, port: u16) -> String {
        let record = std::fs::read_to_string(record_path(home, port))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let about = match record {
            Some(r) => format!(
                " (pid {}, API {})",
                r["pid"].as_i64().unwrap_or_default(),
                r["api"].as_str().unwrap_or("unknown")
            ),
            None => String::new(),
        };
        format!(
            "Stilt cannot start: another Stilt is already running on port {port} with STILT_HOME {}{about}; stop it with `stilt down`, or start this one with another --port (or STILT_PORT / TILT_PORT)",
            home.display()
        )
    }

    /// Where this instance records what it starts (`instances/<port>.leftovers.json`).
    pub fn leftovers_path(&self) -> PathBuf {
        instances_dir(&self.home).join(format!("{}.leftovers.json", self.port))
    }

    /// Makes the instance reachable: its record and its kubeconfig context. Call only once the
    /// API server listens, so a client never finds an address that does not answer yet.
    pub fn publish(&mut self, cfg: &Kubeconfig) -> Result<PathBuf> {
        let record = json!({"pid": std::process::id(), "api": cfg.server, "port": self.port});
        std::fs::write(record_path(&self.home, self.port), record.to_string())
            .context("writing the instance record")?;
        let context = context_name(self.port);
        let path = with_config_lock(&self.home, || {
            stilt_apiserver::write_kubeconfig(&self.home, &context, cfg)
        })
        .with_context(|| format!("writing the kubeconfig to {}", self.home.display()))?;
        self.published = true;
        Ok(path)
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if !self.published {
            return;
        }
        let _ = std::fs::remove_file(record_path(&self.home, self.port));
        let context = context_name(self.port);
        if let Err(e) = with_config_lock(&self.home, || {
            stilt_apiserver::remove_kubeconfig_context(&self.home, &context)
        }) {
            eprintln!("stilt: could not remove context {context} from the kubeconfig: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_on_the_same_port_is_refused_and_names_the_first() {
        let home = tempfile::tempdir().unwrap();
        let mut first = InstanceLock::acquire(home.path(), 10399).unwrap();
        first
            .publish(&Kubeconfig {
                server: "https://127.0.0.1:4242".into(),
                token: "t".into(),
                ca_pem: String::new(),
            })
            .unwrap();
        let err = InstanceLock::acquire(home.path(), 10399)
            .err()
            .expect("the port is taken")
            .to_string();
        assert!(err.contains("already running on port 10399"), "{err}");
        assert!(err.contains("https://127.0.0.1:4242"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another port in the same home is fine.
        let _other = InstanceLock::acquire(home.path(), 10398).unwrap();
        drop(first);
        let _again = InstanceLock::acquire(home.path(), 10399).unwrap();
    }

    #[test]
    fn contexts_are_named_by_port() {
        assert_eq!(context_name(10350), "stilt");
        assert_eq!(context_name(10351), "stilt-10351");
    }
}
