//! Field validation. Errors name the field path (`spec.basePath`) as the Kubernetes API does.

use crate::*;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.execs[0].args`.
    pub field: String,
    /// Kubernetes cause type: `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueRequired",
            message: message.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks the semantic rules of an object beyond its shape.
pub trait Validate {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Longest name accepted (Kubernetes' DNS-subdomain limit; Tilt sets none, but a longer name is
/// never a real object and would bloat every list and watch).
pub const MAX_NAME_LEN: usize = 253;

/// Checks `metadata.name` and `metadata.generateName` with the Kubernetes API server's rule for
/// these (Tilt's) objects: a usable URL path segment — not `.` or `..`, no `/` or `%`. Tilt's own
/// names (`web:serve`, `(Tiltfile)`, `configs:(Tiltfile)`) pass. Stilt also refuses control
/// characters (NUL, newline: they break logs, tables and files named after objects) and names
/// longer than [`MAX_NAME_LEN`].
pub fn validate_name(meta: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !meta.generate_name.is_empty() {
        for msg in name_problems(&meta.generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                format!("Invalid value: {:?}: {msg}", meta.generate_name),
            ));
        }
    }
    if meta.name.is_empty() {
        if meta.generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_problems(&meta.name, false) {
            errs.push(FieldError::invalid(
                "metadata.name",
                format!("Invalid value: {:?}: {msg}", meta.name),
            ));
        }
    }
    errs
}

/// What is wrong with a name (or, with `prefix`, a generateName).
pub fn name_problems(name: &str, prefix: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !prefix && (name == "." || name == "..") {
        problems.push(format!("may not be '{name}'"));
    }
    for illegal in ["/", "%"] {
        if name.contains(illegal) {
            problems.push(format!("may not contain '{illegal}'"));
        }
    }
    if name.chars().any(char::is_control) {
        problems.push("may not contain control characters (NUL, newline, tab, ...)".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        problems.push(format!("must be no more than {MAX_NAME_LEN} characters"));
    }
    problems
}

fn require(errs: &mut Vec<FieldError>, ok: bool, field: &str, message: &str) {
    if !ok {
        errs.push(FieldError::required(field, message));
    }
}

fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

impl Validate for LiveUpdate {
    fn validate(&self) -> Vec<FieldError> {
        let s = &self.spec;
        let mut errs = Vec::new();
        if s.base_path.is_empty() {
            errs.push(FieldError::required(
                "spec.basePath",
                "basePath cannot be empty",
            ));
        } else if !is_absolute(&s.base_path) {
            errs.push(FieldError::invalid(
                "spec.basePath",
                format!("{:?}: basePath must be an absolute path", s.base_path),
            ));
        }
        let sel = &s.selector;
        let selectors = [
            sel.kubernetes.is_some(),
            sel.docker_compose.is_some(),
            sel.docker.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        match (&sel.kubernetes, &sel.docker_compose) {
            _ if selectors == 0 => errs.push(FieldError::required(
                "spec.selector",
                "exactly one of selector.kubernetes, selector.dockerCompose or selector.docker is required",
            )),
            _ if selectors > 1 => errs.push(FieldError::invalid(
                "spec.selector",
                "only one of selector.kubernetes, selector.dockerCompose or selector.docker may be set",
            )),
            (None, None) => require(
                &mut errs,
                sel.docker.as_ref().is_some_and(|d| !d.image.is_empty()),
                "spec.selector.docker.image",
                "image is required",
            ),
            (Some(k), _) => {
                require(
                    &mut errs,
                    !k.discovery_name.is_empty(),
                    "spec.selector.kubernetes.discoveryName",
                    "discoveryName is required",
                );
                let set = [&k.image, &k.container_name, &k.image_map_name]
                    .iter()
                    .filter(|v| !v.is_empty())
                    .count();
                if set != 1 {
                    errs.push(FieldError::invalid(
                        "spec.selector.kubernetes",
                        "exactly one of image, containerName or imageMapName must be specified",
                    ));
                }
            }
            (_, Some(dc)) => require(
                &mut errs,
                !dc.service.is_empty(),
                "spec.selector.dockerCompose.service",
                "service is required",
            ),
        }
        for (i, sync) in s.syncs.iter().enumerate() {
            require(
                &mut errs,
                !sync.local_path.is_empty(),
                &format!("spec.syncs[{i}].localPath"),
                "localPath is required",
            );
            if sync.container_path.is_empty() {
                errs.push(FieldError::required(
                    format!("spec.syncs[{i}].containerPath"),
                    "containerPath is required",
                ));
            } else if !is_absolute(&sync.container_path) {
                errs.push(FieldError::invalid(
                    format!("spec.syncs[{i}].containerPath"),
                    format!(
                        "{:?}: containerPath must be an absolute path",
                        sync.container_path
                    ),
                ));
            }
        }
        for (i, exec) in s.execs.iter().enumerate() {
            if exec.args.is_empty() {
                errs.push(FieldError::invalid(
                    format!("spec.execs[{i}].args"),
                    "args must have length at least 1",
                ));
            }
        }
        if !matches!(
            s.restart.as_str(),
            "" | LIVE_UPDATE_RESTART_NONE | LIVE_UPDATE_RESTART_ALWAYS
        ) {
            errs.push(FieldError::invalid(
                "spec.restart",
                format!("{:?}: must be one of \"none\", \"always\"", s.restart),
            ));
        }
        errs
    }
}

impl Validate for Cmd {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.spec.args.is_empty() {
            errs.push(FieldError::required(
                "spec.args",
                "args must have length at least 1",
            ));
        }
        for (i, kv) in self.spec.env.iter().enumerate() {
            if !kv.contains('=') {
                errs.push(FieldError::invalid(
                    format!("spec.env[{i}]"),
                    format!("{kv:?}: must be KEY=value"),
                ));
            }
        }
        errs
    }
}

impl Validate for Session {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.tiltfile_path.is_empty(),
            "spec.tiltfilePath",
            "tiltfilePath cannot be empty",
        );
        if !matches!(
            self.spec.exit_condition.as_str(),
            EXIT_CONDITION_MANUAL | EXIT_CONDITION_CI
        ) {
            errs.push(FieldError::invalid(
                "spec.exitCondition",
                format!(
                    "{:?}: must be one of \"manual\", \"ci\"",
                    self.spec.exit_condition
                ),
            ));
        }
        errs
    }
}

impl Validate for FileWatch {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.spec.watched_paths.is_empty() {
            errs.push(FieldError::required(
                "spec.watchedPaths",
                "at least one path is required",
            ));
        }
        for (i, p) in self.spec.watched_paths.iter().enumerate() {
            if !is_absolute(p) {
                errs.push(FieldError::invalid(
                    format!("spec.watchedPaths[{i}]"),
                    format!("{p:?}: must be an absolute path"),
                ));
            }
        }
        for (i, ig) in self.spec.ignores.iter().enumerate() {
            if !is_absolute(&ig.base_path) {
                errs.push(FieldError::invalid(
                    format!("spec.ignores[{i}].basePath"),
                    format!("{:?}: must be an absolute path", ig.base_path),
                ));
            }
        }
        errs
    }
}

impl Validate for Tiltfile {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.path.is_empty(),
            "spec.path",
            "path cannot be empty",
        );
        errs
    }
}

impl Validate for KubernetesApply {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match (self.spec.yaml.is_empty(), self.spec.apply_cmd.is_some()) {
            (true, false) => errs.push(FieldError::required(
                "spec.yaml",
                "one of yaml or applyCmd is required",
            )),
            (false, true) => errs.push(FieldError::invalid(
                "spec.applyCmd",
                "yaml and applyCmd cannot both be set",
            )),
            _ => {}
        }
        if self
            .spec
            .apply_cmd
            .as_ref()
            .is_some_and(|cmd| cmd.args.is_empty())
        {
            errs.push(FieldError::required(
                "spec.applyCmd.args",
                "args must have length at least 1",
            ));
        }
        if self.spec.apply_cmd.is_some() && self.spec.delete_cmd.is_none() {
            errs.push(FieldError::required(
                "spec.deleteCmd",
                "deleteCmd is required when applyCmd is set",
            ));
        }
        errs
    }
}

impl Validate for PortForward {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.pod_name.is_empty(),
            "spec.podName",
            "podName is required",
        );
        for (i, f) in self.spec.forwards.iter().enumerate() {
            if !(1..=65535).contains(&f.container_port) {
                errs.push(FieldError::invalid(
                    format!("spec.forwards[{i}].containerPort"),
                    format!("{}: must be between 1 and 65535", f.container_port),
                ));
            }
            if !(0..=65535).contains(&f.local_port) {
                errs.push(FieldError::invalid(
                    format!("spec.forwards[{i}].localPort"),
                    format!("{}: must be between 0 and 65535", f.local_port),
                ));
            }
        }
        errs
    }
}

impl Validate for ImageMap {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.selector.is_empty(),
            "spec.selector",
            "selector is required",
        );
        errs
    }
}

impl Validate for DockerImage {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.r#ref.is_empty(),
            "spec.ref",
            "ref is required",
        );
        errs
    }
}

impl Validate for UIButton {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        require(
            &mut errs,
            !self.spec.text.is_empty(),
            "spec.text",
            "text is required",
        );
        let loc = &self.spec.location;
        require(
            &mut errs,
            !loc.component_id.is_empty(),
            "spec.location.componentID",
            "componentID is required",
        );
        if !matches!(
            loc.component_type.as_str(),
            "Resource" | "Global" | "resource" | "global"
        ) {
            errs.push(FieldError::invalid(
                "spec.location.componentType",
                format!(
                    "{:?}: must be one of \"Resource\", \"Global\"",
                    loc.component_type
                ),
            ));
        }
        errs
    }
}

impl Validate for Syncback {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_name(&self.metadata);
        let s = &self.spec;
        match (&s.source.kubernetes, &s.source.docker_compose) {
            (Some(_), Some(_)) | (None, None) => errs.push(FieldError::invalid(
                "spec.source",
                "exactly one of kubernetes, dockerCompose must be set",
            )),
            (Some(k), None) if k.object.is_empty() => errs.push(FieldError::required(
                "spec.source.kubernetes.object",
                "the object to read from (deploy/NAME, pod/NAME, ...)",
            )),
            (None, Some(d)) if d.service.is_empty() => errs.push(FieldError::required(
                "spec.source.dockerCompose.service",
                "the compose service to read from",
            )),
            _ => {}
        }
        if !s.src_dir.starts_with('/') {
            errs.push(FieldError::invalid(
                "spec.srcDir",
                format!("{:?}: must be an absolute path in the container", s.src_dir),
            ));
        }
        if !s.target_dir.starts_with('/') {
            errs.push(FieldError::invalid(
                "spec.targetDir",
                format!("{:?}: must be an absolute local path", s.target_dir),
            ));
        }
        for (i, p) in s.paths.iter().enumerate() {
            if p.split('/').any(|c| c == "..") {
                errs.push(FieldError::invalid(
                    format!("spec.paths[{i}]"),
                    format!("{p:?}: must stay inside srcDir"),
                ));
            }
        }
        if s.interval_seconds < 0 {
            errs.push(FieldError::invalid(
                "spec.intervalSeconds",
                "must not be negative",
            ));
        }
        errs
    }
}

macro_rules! no_extra_rules {
    ($($kind:ty),*) => { $(impl Validate for $kind {})* };
}

no_extra_rules!(
    KubernetesDiscovery,
    PodLogStream,
    CmdImage,
    DockerComposeService,
    DockerComposeLogStream,
    ConfigMap,
    Extension,
    ExtensionRepo,
    Cluster,
    UIResource,
    UISession,
    ToggleButton
);

#[cfg(test)]
mod name_tests {
    use super::*;

    fn named(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_the_api_servers_path_segment_rule() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let cases: &[(&str, &[&str])] = &[
            ("web", &[]),
            ("web:serve", &[]),
            ("local:web", &[]),
            ("configs:(Tiltfile)", &[]),
            ("(Tiltfile)", &[]),
            ("Upper_Case and spaces", &[]),
            (".", &["may not be '.'"]),
            ("..", &["may not be '..'"]),
            ("a/b", &["may not contain '/'"]),
            ("50%", &["may not contain '%'"]),
            ("a\0b", &["may not contain control characters"]),
            ("a\nb", &["may not contain control characters"]),
            (&long, &["must be no more than 253 characters"]),
        ];
        for (name, want) in cases {
            let errs = validate_name(&named(name));
            assert_eq!(errs.len(), want.len(), "{name:?}: {errs:?}");
            for (e, w) in errs.iter().zip(want.iter()) {
                assert_eq!(e.field, "metadata.name");
                assert!(e.message.contains(w), "{name:?}: {e}");
            }
        }
        assert_eq!(
            validate_name(&ObjectMeta {
                generate_name: "..".into(),
                ..Default::default()
            }),
            vec![],
            "'..' is a fine prefix"
        );
    }
}
