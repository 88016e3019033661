//! The start time a load is given becomes the PodLogStreams' `sinceTime`; a load without one
//! (`stilt down`, which has no session) still loads.

use stilt_tiltfile::LoadRequest;
use stilt_tiltfile::RealHost;

fn load_with(start_time: Option<&str>) -> Result<serde_json::Value, String> {
    let dir = std::env::temp_dir().join(format!(
        "stilt-start-time-{}-{}",
        std::process::id(),
        start_time.map_or(0, str::len)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Tiltfile"), "k8s_yaml('pod.yaml')\n").unwrap();
    std::fs::write(
        dir.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n",
    )
    .unwrap();
    let host = RealHost::new();
    let mut req = LoadRequest::new(dir.join("Tiltfile"), &host);
    req.start_time = start_time.map(str::to_string);
    let r = stilt_tiltfile::load(&req).map_err(|e| e.message);
    std::fs::remove_dir_all(&dir).unwrap();
    let r = r?;
    let kapp = r
        .objects
        .iter()
        .find(|o| o.kind() == "KubernetesApply")
        .expect("a KubernetesApply");
    Ok(kapp.to_value())
}

#[test]
fn the_start_time_is_the_log_streams_since_time() {
    let kapp = load_with(Some("2026-12-07T03:00:00Z")).unwrap();
    assert_eq!(
        kapp["spec"]["podLogStreamTemplateSpec"]["sinceTime"],
        "2026-12-07T03:00:00Z"
    );
}

#[test]
fn no_start_time_or_an_empty_one_loads_without_since_time() {
    for t in [None, Some("")] {
        let kapp = load_with(t).unwrap();
        assert!(
            kapp["spec"]["podLogStreamTemplateSpec"]["sinceTime"].is_null(),
            "{t:?}: {kapp}"
        );
    }
}
