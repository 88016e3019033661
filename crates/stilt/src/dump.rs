//! `stilt dump engine`: everything the running instance holds, for bug reports.

use crate::args::Dump;
use crate::client::Client;
use anyhow::Result;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

pub fn dump(what: Dump) -> Result<ExitCode> {
    match what {
        Dump::Engine => engine(),
    }
}

/// Prints `{"apiVersion": ..., "objects": {"<Kind>": [...]}}` with every object of every kind.
fn engine() -> Result<ExitCode> {
    let client = Client::from_home()?;
    let mut objects = Map::new();
    for info in stilt_api::kinds() {
        let list = client.get(&Client::collection_path(info), "application/json")?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        objects.insert(info.kind.to_string(), Value::Array(items));
    }
    let doc = json!({"apiVersion": stilt_api::API_VERSION, "objects": objects});
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}
