//! The digest that lets an unchanged image be reused after a restart: equal inputs, equal
//! digest; any change to what the build sees, another one; builds that may differ on equal
//! inputs have none.

use stilt_docker::{BuildContext, BuildRequest};

fn request(dir: &std::path::Path) -> BuildRequest {
    BuildRequest::new("web", BuildContext::new(dir))
}

#[test]
fn the_digest_follows_what_the_build_sees() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(dir.path().join("a.txt"), "one").unwrap();
    let first = request(dir.path()).input_digest().unwrap().unwrap();
    assert_eq!(
        request(dir.path()).input_digest().unwrap().unwrap(),
        first,
        "same inputs"
    );

    std::fs::write(dir.path().join("a.txt"), "two").unwrap();
    let edited = request(dir.path()).input_digest().unwrap().unwrap();
    assert_ne!(edited, first, "a context file changed");

    let with_arg = request(dir.path())
        .build_arg("V", "1")
        .input_digest()
        .unwrap()
        .unwrap();
    assert_ne!(with_arg, edited, "a build arg");

    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    assert_ne!(
        request(dir.path()).input_digest().unwrap().unwrap(),
        edited,
        "the Dockerfile changed"
    );

    let mut filtered = request(dir.path());
    filtered.context =
        BuildContext::new(dir.path()).with_filter(|p| p != std::path::Path::new("a.txt"));
    let before = filtered.input_digest().unwrap().unwrap();
    std::fs::write(dir.path().join("a.txt"), "three").unwrap();
    assert_eq!(
        filtered.input_digest().unwrap().unwrap(),
        before,
        "an ignored file is not an input"
    );
}

#[test]
fn builds_that_may_differ_on_equal_inputs_have_no_digest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let mut pull = request(dir.path());
    pull.pull = true;
    assert_eq!(pull.input_digest().unwrap(), None);
    let mut secret = request(dir.path());
    secret.secrets = vec!["id=x,src=/tmp/x".into()];
    assert_eq!(secret.input_digest().unwrap(), None);
}
