//! End to end on the real cluster: helm() renders a local chart with a values file and `set=`,
//! kustomize() builds an overlay on a base; what they read is watched, so an edit of the values
//! file, of a chart template or of the base re-renders and re-applies.
//! Needs the dev cluster (scripts/dev-cluster) and `helm` (scripts/go-tools builds it); kustomize()
//! uses `kustomize` when on PATH, else `kubectl kustomize`.

mod common;

use common::*;
use std::time::Duration;

fn cm_data(name: &str, key: &str) -> String {
    kubectl(&[
        "get",
        "configmap",
        name,
        "--ignore-not-found",
        "-o",
        &format!("jsonpath={{.data.{key}}}"),
    ])
}

/// Deletes the ConfigMaps a test made, pass or fail.
struct DeleteConfigMaps(Vec<String>);
impl Drop for DeleteConfigMaps {
    fn drop(&mut self) {
        for n in &self.0 {
            kubectl(&[
                "delete",
                "configmap",
                n,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn helm_local_chart_with_values_and_set_reloads_on_edits() {
    require_cluster();
    assert!(
        std::process::Command::new("helm")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "helm is not on PATH: run scripts/go-tools (scripts/test e2e does)"
    );
    let name = format!("e2e-helm-{}", free_port());
    let _cleanup = DeleteConfigMaps(vec![name.clone()]);
    let p = Project::new(&format!(
        "allow_k8s_contexts('stilt-dev')\n\
         k8s_yaml(helm('chart', name='rel', namespace='default', values=['dev-values.yaml'],\n\
                       set=['extra=from-set', 'cmName={name}']))\n"
    ));
    p.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    );
    p.write(
        "chart/values.yaml",
        "cmName: unset\ngreeting: from chart defaults\nextra: none\n",
    );
    p.write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.cmName }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  extra: {{ .Values.extra | quote }}\n  release: {{ .Release.Name | quote }}\n",
    );
    p.write("dev-values.yaml", "greeting: from the values file\n");
    let up = p.up();
    let _log = LogOnFailure(&up);

    wait_until(Duration::from_secs(120), "the rendered ConfigMap", || {
        cm_data(&name, "greeting") == "from the values file"
    });
    assert_eq!(cm_data(&name, "extra"), "from-set");
    assert_eq!(cm_data(&name, "release"), "rel");

    // The values file is watched.
    p.write("dev-values.yaml", "greeting: edited values\n");
    wait_until(Duration::from_secs(60), "the values edit applied", || {
        cm_data(&name, "greeting") == "edited values"
    });

    // So is the chart.
    p.write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.cmName }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  extra: {{ .Values.extra | quote }}\n  release: {{ .Release.Name | quote }}\n  added: \"by a template edit\"\n",
    );
    wait_until(Duration::from_secs(60), "the template edit applied", || {
        cm_data(&name, "added") == "by a template edit"
    });
}

#[test]
#[ignore = "e2e tier: scripts/test e2e"]
fn kustomize_overlay_on_a_base_reloads_on_base_edits() {
    require_cluster();
    let name = format!("e2e-kust-{}", free_port());
    let _cleanup = DeleteConfigMaps(vec![name.clone()]);
    let p = Project::new("allow_k8s_contexts('stilt-dev')\nk8s_yaml(kustomize('overlay'))\n");
    p.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    p.write(
        "base/cm.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  layer: base\n  fromBase: v1\n"),
    );
    p.write(
        "overlay/kustomization.yaml",
        "resources:\n- ../base\npatches:\n- path: patch.yaml\n",
    );
    p.write(
        "overlay/patch.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  layer: overlay\n"),
    );
    let up = p.up();
    let _log = LogOnFailure(&up);

    wait_until(Duration::from_secs(120), "the overlaid ConfigMap", || {
        cm_data(&name, "layer") == "overlay"
    });
    assert_eq!(cm_data(&name, "fromBase"), "v1");

    // The base, outside the overlay's directory, is watched too.
    p.write(
        "base/cm.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  layer: base\n  fromBase: v2\n"),
    );
    wait_until(Duration::from_secs(60), "the base edit applied", || {
        cm_data(&name, "fromBase") == "v2"
    });
    assert_eq!(cm_data(&name, "layer"), "overlay");
}
