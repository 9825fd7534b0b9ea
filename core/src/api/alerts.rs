//! `/api/v1/alerts`: what alert modules report about their deliveries
//! (see [`crate::alerts`]).

use serde_json::json;
use tiny_http::Request;

use crate::alerts::{Report, MAX_BODY};
use crate::api::{error, json_body_within, json_reply, ApiContext, Reply};

/// `POST /api/v1/alerts/report`: a module's channel figures and recent
/// alerts; 400 names the first bad field.
pub fn report(ctx: &ApiContext, request: &mut Request) -> Reply {
    let report: Report = match json_body_within(request, MAX_BODY) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let module = report.module.clone();
    match ctx.alerts.report(report) {
        Ok(accepted) => json_reply(
            200,
            &json!({"module": module, "channels": accepted.channels,
                "recent_added": accepted.recent_added}),
        ),
        Err(why) => error(400, why),
    }
}

/// `GET /api/v1/alerts`: every reported channel and the recent alerts.
pub fn list(ctx: &ApiContext) -> Reply {
    let (channels, recent) = ctx.alerts.view();
    json_reply(200, &json!({"channels": channels, "recent": recent}))
}
