#![allow(dead_code)]
pub mod table;
