//! Tilt's content-addressed image tags (tilt-behaviour.md §4.4).
//!
//! Tag = `tilt-` + the first 16 hex characters of the image ID digest (`sha256:<hex>`), e.g.
//! `tilt-11cd0b38bc3ceb95`. The same image (an unchanged context with a warm cache) therefore
//! always gets the same tag, and re-applying the same YAML is a no-op.

use crate::error::{DockerError, Result};

/// Number of hex characters of the digest used in the tag.
pub const TILT_TAG_HEX_LEN: usize = 16;
/// Prefix of Tilt's content tags.
pub const TILT_TAG_PREFIX: &str = "tilt-";

/// `tilt-<first 16 hex chars of the digest>` for an image ID such as `sha256:11cd0b38…`.
/// A bare hex ID (no algorithm prefix) is accepted too.
pub fn tilt_tag(image_id: &str) -> Result<String> {
    let hex = image_id.split_once(':').map(|(_, h)| h).unwrap_or(image_id);
    if hex.len() < TILT_TAG_HEX_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DockerError::Other(format!(
            "not an image digest: {image_id:?}"
        )));
    }
    Ok(format!(
        "{TILT_TAG_PREFIX}{}",
        hex[..TILT_TAG_HEX_LEN].to_ascii_lowercase()
    ))
}

/// The repository part of a reference: drops a `:tag` and/or `@digest`, keeping a registry port
/// (`localhost:5000/web:v1` → `localhost:5000/web`).
pub fn ref_without_tag(image_ref: &str) -> &str {
    let no_digest = image_ref.split_once('@').map_or(image_ref, |(r, _)| r);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].rfind(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    }
}

/// The tag of a reference, if any (`web:v1` → `v1`, `localhost:5000/web` → `None`).
pub fn ref_tag(image_ref: &str) -> Option<&str> {
    let repo = ref_without_tag(image_ref);
    let rest = &image_ref[repo.len()..];
    let rest = rest.split_once('@').map_or(rest, |(t, _)| t);
    rest.strip_prefix(':')
}

/// `<ref without tag>:tilt-<hash>`: the ref a build is tagged with and that gets injected.
pub fn tilt_tagged_ref(image_ref: &str, image_id: &str) -> Result<String> {
    Ok(format!(
        "{}:{}",
        ref_without_tag(image_ref),
        tilt_tag(image_id)?
    ))
}

/// Split `repo[:tag]` into what the engine's tag/push endpoints want (tag defaults to `latest`).
pub fn split_repo_tag(image_ref: &str) -> (String, String) {
    let repo = ref_without_tag(image_ref).to_string();
    let tag = ref_tag(image_ref).unwrap_or("latest").to_string();
    (repo, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:11cd0b38bc3ceb95aa0000000000000000000000000000000000000000000000";

    #[test]
    fn tag_is_first_16_hex_of_digest() {
        assert_eq!(tilt_tag(ID).unwrap(), "tilt-11cd0b38bc3ceb95");
        assert_eq!(
            tilt_tag("11CD0B38BC3CEB95AA00").unwrap(),
            "tilt-11cd0b38bc3ceb95"
        );
        assert!(tilt_tag("sha256:abc").is_err());
        assert!(tilt_tag("sha256:zzzzzzzzzzzzzzzzzzzz").is_err());
    }

    #[test]
    fn same_id_same_tag_different_id_different_tag() {
        let other = ID.replace("11cd", "11ce");
        assert_eq!(tilt_tag(ID).unwrap(), tilt_tag(ID).unwrap());
        assert_ne!(tilt_tag(ID).unwrap(), tilt_tag(&other).unwrap());
    }

    #[test]
    fn ref_parsing() {
        assert_eq!(ref_without_tag("web"), "web");
        assert_eq!(ref_without_tag("web:v1"), "web");
        assert_eq!(ref_without_tag("localhost:5000/web"), "localhost:5000/web");
        assert_eq!(
            ref_without_tag("localhost:5000/web:v1"),
            "localhost:5000/web"
        );
        assert_eq!(ref_without_tag("gcr.io/a/b@sha256:abcd"), "gcr.io/a/b");
        assert_eq!(ref_without_tag("gcr.io/a/b:t@sha256:abcd"), "gcr.io/a/b");
        assert_eq!(ref_tag("web:v1"), Some("v1"));
        assert_eq!(ref_tag("localhost:5000/web"), None);
        assert_eq!(ref_tag("a/b:t@sha256:abcd"), Some("t"));
        assert_eq!(
            split_repo_tag("localhost:5000/web"),
            ("localhost:5000/web".into(), "latest".into())
        );
    }

    #[test]
    fn tagged_ref_replaces_user_tag() {
        assert_eq!(
            tilt_tagged_ref("localhost:5000/web:v1", ID).unwrap(),
            "localhost:5000/web:tilt-11cd0b38bc3ceb95"
        );
        assert_eq!(
            tilt_tagged_ref("web", ID).unwrap(),
            "web:tilt-11cd0b38bc3ceb95"
        );
    }
}
