//! A resource as the Tiltfile declares it and the build queue schedules it (Tilt's manifest):
//! what its API objects alone do not say. The loader produces it; the Tiltfile reconciler puts
//! it on the resource's UIResource as `stilt.dev/*` annotations; the build queue and the session
//! read it back from there. This module is the one place that writes and reads those annotations.

use serde::Serialize;

use crate::ui::{UIResource, UIResourceLink};

pub const ANN_RESOURCE_TYPE: &str = "stilt.dev/resource-type";
pub const ANN_TRIGGER_MODE: &str = "stilt.dev/trigger-mode";
pub const ANN_AUTO_INIT: &str = "stilt.dev/auto-init";
pub const ANN_RESOURCE_DEPS: &str = "stilt.dev/resource-deps";
pub const ANN_ALLOW_PARALLEL: &str = "stilt.dev/allow-parallel";
pub const ANN_POD_READINESS: &str = "stilt.dev/pod-readiness";
pub const ANN_IMAGE_MAPS: &str = "stilt.dev/image-maps";
/// The resource's place in the Tiltfile (1-based), which orders the UI and the build queue.
pub const ANN_ORDER: &str = "stilt.dev/order";
pub const ANN_LINKS: &str = "stilt.dev/links";
/// The value of [`ANN_RESOURCE_TYPE`] on the `(Tiltfile)` UIResource.
pub const RESOURCE_TYPE_TILTFILE: &str = "tiltfile";

/// What kind of resource a manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    K8s,
    #[default]
    Local,
    DockerCompose,
    /// `syncback(...)` / `dc_syncback(...)`: a `Syncback` object.
    Syncback,
}

impl ResourceType {
    /// The annotation value (and Tilt's target-type spelling): `k8s`, `local`, `docker-compose`,
    /// `syncback`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::K8s => "k8s",
            ResourceType::Local => "local",
            ResourceType::DockerCompose => "docker-compose",
            ResourceType::Syncback => "syncback",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        [
            ResourceType::K8s,
            ResourceType::Local,
            ResourceType::DockerCompose,
            ResourceType::Syncback,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Manifest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// `auto` | `manual`.
    pub trigger_mode: String,
    pub auto_init: bool,
    pub resource_deps: Vec<String>,
    pub labels: Vec<String>,
    /// (url, name)
    pub links: Vec<(String, String)>,
    /// k8s: `wait` | `ignore` | `succeeded`.
    pub pod_readiness: String,
    /// ImageMap names this resource builds (deployed images and their base images), build order.
    pub image_maps: Vec<String>,
    pub allow_parallel: bool,
    /// Enabled at load (`config.set_enabled_resources`); afterwards the resource's disable
    /// ConfigMap says, so this is not carried on the UIResource.
    pub enabled: bool,
}

impl Manifest {
    pub fn is_manual(&self) -> bool {
        self.trigger_mode == "manual"
    }

    pub fn endpoint_links(&self) -> Vec<UIResourceLink> {
        self.links
            .iter()
            .map(|(url, name)| UIResourceLink {
                url: url.clone(),
                name: name.clone(),
            })
            .collect()
    }

    /// Writes this manifest, `order`-th in the Tiltfile, onto its UIResource (and its labels).
    pub fn annotate(&self, ui: &mut UIResource, order: usize) {
        let a = &mut ui.metadata.annotations;
        let mut set = |k: &str, v: String| {
            a.insert(k.to_string(), v);
        };
        set(crate::meta::ANNOTATION_RESOURCE, self.name.clone());
        set(ANN_RESOURCE_TYPE, self.kind.as_str().into());
        set(
            ANN_TRIGGER_MODE,
            if self.trigger_mode.is_empty() {
                "auto".into()
            } else {
                self.trigger_mode.clone()
            },
        );
        set(ANN_AUTO_INIT, self.auto_init.to_string());
        set(ANN_RESOURCE_DEPS, self.resource_deps.join(","));
        set(ANN_ALLOW_PARALLEL, self.allow_parallel.to_string());
        set(ANN_POD_READINESS, self.pod_readiness.clone());
        set(ANN_IMAGE_MAPS, self.image_maps.join(","));
        set(ANN_ORDER, order.to_string());
        set(
            ANN_LINKS,
            serde_json::to_string(&self.endpoint_links()).unwrap_or_default(),
        );
        for l in &self.labels {
            ui.metadata.labels.insert(l.clone(), l.clone());
        }
    }

    /// The resource type a UIResource carries (without decoding the rest: the session reads
    /// it for every resource on every pass).
    pub fn kind_of(ui: &UIResource) -> Option<ResourceType> {
        ResourceType::parse(ui.metadata.annotations.get(ANN_RESOURCE_TYPE)?)
    }

    /// The pod readiness a UIResource carries (`wait`, `ignore`, `succeeded`; empty if none).
    pub fn pod_readiness_of(ui: &UIResource) -> &str {
        ui.metadata
            .annotations
            .get(ANN_POD_READINESS)
            .map_or("", String::as_str)
    }

    /// The manifest a UIResource carries and its order; `None` for the `(Tiltfile)` resource
    /// and for UIResources the loader did not make.
    pub fn from_ui_resource(ui: &UIResource) -> Option<(Manifest, usize)> {
        let a = &ui.metadata.annotations;
        let kind = Manifest::kind_of(ui)?;
        let list = |k: &str| -> Vec<String> {
            a.get(k)
                .map(|d| {
                    d.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let links: Vec<UIResourceLink> = a
            .get(ANN_LINKS)
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let manifest = Manifest {
            name: ui.metadata.name.clone(),
            kind,
            trigger_mode: a
                .get(ANN_TRIGGER_MODE)
                .cloned()
                .unwrap_or_else(|| "auto".into()),
            auto_init: a.get(ANN_AUTO_INIT).is_none_or(|v| v != "false"),
            resource_deps: list(ANN_RESOURCE_DEPS),
            labels: ui.metadata.labels.keys().cloned().collect(),
            links: links.into_iter().map(|l| (l.url, l.name)).collect(),
            pod_readiness: Manifest::pod_readiness_of(ui).to_string(),
            image_maps: list(ANN_IMAGE_MAPS),
            allow_parallel: a.get(ANN_ALLOW_PARALLEL).is_some_and(|v| v == "true"),
            enabled: true,
        };
        let order = a
            .get(ANN_ORDER)
            .and_then(|o| o.parse().ok())
            .unwrap_or(usize::MAX);
        Some((manifest, order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::EmptySpec;

    #[test]
    fn a_manifest_survives_its_ui_resource() {
        let m = Manifest {
            name: "api".into(),
            kind: ResourceType::DockerCompose,
            trigger_mode: "manual".into(),
            auto_init: false,
            resource_deps: vec!["db".into(), "cache".into()],
            labels: vec!["backend".into()],
            links: vec![("http://localhost:8000".into(), "web".into())],
            pod_readiness: "ignore".into(),
            image_maps: vec!["api-image".into()],
            allow_parallel: true,
            enabled: true,
        };
        let mut ui = UIResource::new("api", EmptySpec {});
        m.annotate(&mut ui, 3);
        assert_eq!(Manifest::from_ui_resource(&ui), Some((m, 3)));
    }

    #[test]
    fn defaults_when_annotations_are_missing() {
        let mut ui = UIResource::new("x", EmptySpec {});
        assert_eq!(Manifest::from_ui_resource(&ui), None);
        ui.metadata
            .annotations
            .insert(ANN_RESOURCE_TYPE.into(), "k8s".into());
        let (m, order) = Manifest::from_ui_resource(&ui).unwrap();
        assert_eq!(
            (m.trigger_mode.as_str(), m.auto_init, order),
            ("auto", true, usize::MAX)
        );
        ui.metadata
            .annotations
            .insert(ANN_RESOURCE_TYPE.into(), RESOURCE_TYPE_TILTFILE.into());
        assert_eq!(Manifest::from_ui_resource(&ui), None);
    }
}
