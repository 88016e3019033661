//! Image references as Docker normalizes them, and Tilt's selector rule: an image selector
//! matches by repository name, unless it names a tag (then name and tag must both match).

use crate::error::{K8sError, Result};

/// A parsed image reference, normalized (`nginx` → `docker.io/library/nginx`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host (with port), e.g. `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path, e.g. `library/nginx`, `stilt-test/busybox`.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:…`
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parse and normalize. Fails on empty names and uppercase repository paths.
    pub fn parse(s: &str) -> Result<ImageRef> {
        let bad = |why: &str| K8sError::Invalid(format!("invalid image reference {s:?}: {why}"));
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err(bad("empty name or tag"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io".to_string()
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`, the normalized repository name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker prints (`nginx`, `gcr.io/a/b`).
    pub fn familiar_name(&self) -> String {
        if self.domain == "docker.io" {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Which image references an image selector (a `docker_build` ref / ImageMap selector) matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSelector {
    target: ImageRef,
    exact: bool,
}

impl RefSelector {
    /// Tilt's default: by name, or by name and tag when the selector has a tag.
    pub fn new(selector: &str) -> Result<RefSelector> {
        let target = ImageRef::parse(selector)?;
        let exact = target.tag.is_some() || target.digest.is_some();
        Ok(RefSelector { target, exact })
    }

    /// Force exact matching on or off (ImageMap `matchExact`).
    pub fn with_exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Does `image` (as written in a manifest) match?
    pub fn matches(&self, image: &str) -> bool {
        let Ok(r) = ImageRef::parse(image) else {
            return false;
        };
        if r.domain != self.target.domain || r.path != self.target.path {
            return false;
        }
        if !self.exact {
            return true;
        }
        // Exact: the tag must agree (no tag = `latest`), and a digest if the selector has one.
        let tag = |t: &Option<String>| t.clone().unwrap_or_else(|| "latest".into());
        if self.target.digest.is_some() {
            return r.digest == self.target.digest;
        }
        tag(&r.tag) == tag(&self.target.tag)
    }

    /// The selector as parsed.
    pub fn target(&self) -> &ImageRef {
        &self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("nginx", "docker.io/library/nginx", None),
            ("nginx:1.25", "docker.io/library/nginx", Some("1.25")),
            ("library/nginx", "docker.io/library/nginx", None),
            ("index.docker.io/foo/bar:x", "docker.io/foo/bar", Some("x")),
            ("gcr.io/proj/app", "gcr.io/proj/app", None),
            (
                "localhost:5000/web:tilt-0123",
                "localhost:5000/web",
                Some("tilt-0123"),
            ),
            ("localhost/web", "localhost/web", None),
            ("myhost:5000/a/b/c:v", "myhost:5000/a/b/c", Some("v")),
        ];
        for (input, name, tag) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.name(), name, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
        }
        let d = ImageRef::parse("busybox@sha256:abc").unwrap();
        assert_eq!(d.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(d.familiar_name(), "busybox");
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("Upper/case").is_err());
        assert!(ImageRef::parse("a:").is_err());
    }

    #[test]
    fn selector_matches_by_name_unless_tagged() {
        let s = RefSelector::new("web").unwrap();
        assert!(s.matches("web"));
        assert!(s.matches("web:v2"));
        assert!(s.matches("docker.io/library/web:latest"));
        assert!(!s.matches("other/web"));
        assert!(!s.matches("localhost:5000/web"));

        let t = RefSelector::new("web:v1").unwrap();
        assert!(t.matches("web:v1"));
        assert!(!t.matches("web:v2"));
        assert!(!t.matches("web"));

        let l = RefSelector::new("web:latest").unwrap();
        assert!(l.matches("web"));

        let reg = RefSelector::new("localhost:5000/stilt-test/busybox").unwrap();
        assert!(reg.matches("localhost:5000/stilt-test/busybox:latest"));
        assert!(!reg.matches("stilt-test/busybox"));

        let exact = RefSelector::new("web").unwrap().with_exact(true);
        assert!(exact.matches("web:latest"));
        assert!(!exact.matches("web:v1"));
        assert!(!s.matches("not a ref!"));
    }
}
