pub mod error;
pub mod image;
pub mod inject;
pub mod jsonpath;
pub mod manifest;
pub mod names;
