//! Resource names for workloads (`internal/k8s/names.go`): the shortest unique form of
//! `name:kind:namespace:group`, lowercase kind, so `web` stays `web` until a second object is
//! called `web` too (then `web:deployment` and `web:service`, and so on).

use crate::manifest::ObjectRef;

fn components(r: &ObjectRef) -> [String; 4] {
    [
        r.name.clone(),
        r.kind.to_lowercase(),
        if r.namespace.is_empty() {
            "default".to_string()
        } else {
            r.namespace.clone()
        },
        r.group().to_lowercase(),
    ]
}

/// One name per object, in order. Objects identical in all four components keep the full form
/// (duplicates are the loader's error to report).
pub fn unique_names(refs: &[ObjectRef]) -> Vec<String> {
    unique_names_min(refs, 1)
}

/// Like [`unique_names`], using at least `min_components` components (1..=4).
pub fn unique_names_min(refs: &[ObjectRef], min_components: usize) -> Vec<String> {
    let comps: Vec<[String; 4]> = refs.iter().map(components).collect();
    let mut depth = vec![min_components.clamp(1, 4); refs.len()];
    loop {
        let names: Vec<String> = comps
            .iter()
            .zip(&depth)
            .map(|(c, d)| c[..*d].join(":"))
            .collect();
        let mut changed = false;
        for i in 0..refs.len() {
            if depth[i] < 4
                && names
                    .iter()
                    .enumerate()
                    .any(|(j, n)| j != i && *n == names[i])
            {
                depth[i] += 1;
                changed = true;
            }
        }
        if !changed {
            return names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(api: &str, kind: &str, name: &str, ns: &str) -> ObjectRef {
        ObjectRef {
            api_version: api.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: ns.into(),
            uid: String::new(),
        }
    }

    #[test]
    fn shortest_unique_suffix() {
        let refs = [
            r("apps/v1", "Deployment", "web", ""),
            r("apps/v1", "Deployment", "api", ""),
            r("batch/v1", "Job", "web", ""),
            r("apps/v1", "Deployment", "db", "a"),
            r("apps/v1", "Deployment", "db", "b"),
            r("apps/v1", "Deployment", "x", "n"),
            r("example.com/v1", "Deployment", "x", "n"),
        ];
        assert_eq!(
            unique_names(&refs),
            [
                "web:deployment",
                "api",
                "web:job",
                "db:deployment:a",
                "db:deployment:b",
                "x:deployment:n:apps",
                "x:deployment:n:example.com",
            ]
        );
        assert_eq!(unique_names_min(&refs[1..2], 2), ["api:deployment"]);
    }
}
