//! The MCP side: rmcp's server handler, written by hand (not with rmcp's macros) because the
//! tool list depends on `--allow-mutations` at run time. Tools run on blocking threads: they
//! use the CLI's blocking API client, and a wait can take minutes.

use super::tools::{self, Refusal};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::sync::Arc;

pub struct StiltMcp {
    pub allow_mutations: bool,
}

const INSTRUCTIONS: &str = "Stilt runs the project's Tiltfile (Tilt-compatible): it builds, deploys and runs every resource and updates them when files change. After editing code, call wait_for_resource for the affected resource, then explain_failure when it failed; list_resources shows everything at a glance; read_logs reads and searches a resource's log.";

fn tool(def: &tools::ToolDef) -> Tool {
    let schema = match (def.schema)() {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("tool schemas are objects"),
    };
    let hints = if def.mutating {
        ToolAnnotations::new()
            .read_only(false)
            .destructive(def.name == "disable_resource")
            .open_world(false)
    } else {
        ToolAnnotations::new().read_only(true).open_world(false)
    };
    Tool::new(def.name, def.description, Arc::new(schema)).with_annotations(hints)
}

impl ServerHandler for StiltMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("stilt", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            tools::offered(self.allow_mutations).map(tool).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::admit(name, self.allow_mutations).ok().map(tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let def = tools::admit(&request.name, self.allow_mutations).map_err(|r| match r {
            Refusal::Unknown(m) | Refusal::NotAllowed(m) => ErrorData::invalid_params(m, None),
        })?;
        let args = request.arguments.unwrap_or_default();
        let outcome = tokio::task::spawn_blocking(move || tools::run(def, &args))
            .await
            .map_err(|e| ErrorData::internal_error(format!("the tool panicked: {e}"), None))?;
        // A tool that ran and failed is a result the agent reads (isError), not a protocol error.
        let result = match outcome {
            Ok(answer) => {
                let mut r = CallToolResult::success(vec![ContentBlock::text(answer.text)]);
                r.structured_content = answer.structured;
                r
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("{e:#}"))]),
        };
        Ok(result.into())
    }
}
