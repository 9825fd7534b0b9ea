//! `/api/v1/modules`: list, add, start and stop extension modules.

use serde_json::json;
use tiny_http::Request;

use crate::api::{error, json_body, json_reply, ApiContext, Reply};
use crate::modules::{ModuleConfig, ModuleError};

/// `GET /api/v1/modules`: every module with its state and recent output
/// (environment keys only, never values).
pub fn list(ctx: &ApiContext) -> Reply {
    let modules = ctx.modules.list();
    json_reply(200, &json!({"count": modules.len(), "modules": modules}))
}

/// `POST /api/v1/modules`: adds a module until the core stops (it is not
/// written to the config file); starts it when `autostart` (default true).
pub fn add(ctx: &ApiContext, request: &mut Request) -> Reply {
    if !ctx.modules_api_add {
        return error(
            403,
            "adding modules through the API is off; set modules_api_add = true in the core config",
        );
    }
    let config: ModuleConfig = match json_body(request) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    match ctx.modules.add(config) {
        Ok(view) => json_reply(201, &view),
        Err(e) => module_error(e, ""),
    }
}

/// `POST /api/v1/modules/{name}/start`.
pub fn start(ctx: &ApiContext, name: &str) -> Reply {
    match ctx.modules.start_module(name) {
        Ok(view) => json_reply(200, &view),
        Err(e) => module_error(e, name),
    }
}

/// `POST /api/v1/modules/{name}/stop`: returns once the module is gone
/// (SIGTERM, then SIGKILL after 5 s).
pub fn stop(ctx: &ApiContext, name: &str) -> Reply {
    match ctx.modules.stop_module(name) {
        Ok(view) => json_reply(200, &view),
        Err(e) => module_error(e, name),
    }
}

fn module_error(e: ModuleError, name: &str) -> Reply {
    match e {
        ModuleError::NotFound => error(404, format!("no such module `{name}`")),
        ModuleError::Exists => error(409, "a module with that name exists"),
        ModuleError::Invalid(why) => error(400, why),
        ModuleError::Closed => error(503, "the core is shutting down"),
    }
}
