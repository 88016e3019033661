//! fake
pub struct FakeDocker;
pub type FakeExecHandler = ();
