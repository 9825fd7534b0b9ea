//! The table of every operation the HTTP API serves.
//!
//! The router matches requests against [`ROUTES`], and the tests compare the
//! same table with the OpenAPI document, so the document and the router
//! cannot drift apart: a route added here and not described there (or the
//! other way round) fails `cargo test`.

/// What a route does; the router in [`super`] dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /health`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `GET /api/v1/nodes`.
    Nodes,
    /// `GET /api/v1/nodes/{id}`.
    Node,
    /// `DELETE /api/v1/nodes/{id}`.
    DeleteNode,
    /// `POST /api/v1/nodes/{id}/approve`.
    ApproveNode,
    /// `POST /api/v1/nodes/{id}/commands`.
    NodeCommand,
    /// `GET /api/v1/honeypots`.
    Honeypots,
    /// `GET /api/v1/events`.
    Events,
    /// `GET /api/v1/events/export`.
    ExportEvents,
    /// `GET /api/v1/events/{id}`.
    Event,
    /// `GET /api/v1/stats`.
    Stats,
    /// `GET /api/v1/sources/{ip}`.
    Source,
    /// `GET /api/v1/sessions`.
    Sessions,
    /// `GET /api/v1/sessions/{session}`.
    Session,
    /// `GET /api/v1/modules`.
    Modules,
    /// `POST /api/v1/modules`.
    AddModule,
    /// `POST /api/v1/modules/{name}/start`.
    StartModule,
    /// `POST /api/v1/modules/{name}/stop`.
    StopModule,
    /// `GET /api/v1/cores`.
    Cores,
    /// `GET /api/v1/alerts`.
    Alerts,
    /// `POST /api/v1/alerts/report`.
    ReportAlerts,
}

/// One operation: a method, a path pattern (`{name}` matches one segment)
/// and whether it is answered without the API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path as the OpenAPI document writes it.
    pub path: &'static str,
    /// What it does.
    pub op: Op,
    /// Served without the API token.
    pub public: bool,
}

const fn r(method: &'static str, path: &'static str, op: Op) -> Route {
    Route {
        method,
        path,
        op,
        public: false,
    }
}

const fn public(method: &'static str, path: &'static str, op: Op) -> Route {
    Route {
        method,
        path,
        op,
        public: true,
    }
}

/// Every operation, literal paths before the patterns they would shadow.
pub const ROUTES: &[Route] = &[
    public("GET", "/health", Op::Health),
    public("GET", "/api/v1/openapi.json", Op::OpenApi),
    r("GET", "/metrics", Op::Metrics),
    r("GET", "/api/v1/nodes", Op::Nodes),
    r("GET", "/api/v1/nodes/{id}", Op::Node),
    r("DELETE", "/api/v1/nodes/{id}", Op::DeleteNode),
    r("POST", "/api/v1/nodes/{id}/approve", Op::ApproveNode),
    r("POST", "/api/v1/nodes/{id}/commands", Op::NodeCommand),
    r("GET", "/api/v1/honeypots", Op::Honeypots),
    r("GET", "/api/v1/events", Op::Events),
    r("GET", "/api/v1/events/export", Op::ExportEvents),
    r("GET", "/api/v1/events/{id}", Op::Event),
    r("GET", "/api/v1/stats", Op::Stats),
    r("GET", "/api/v1/sources/{ip}", Op::Source),
    r("GET", "/api/v1/sessions", Op::Sessions),
    r("GET", "/api/v1/sessions/{session}", Op::Session),
    r("GET", "/api/v1/modules", Op::Modules),
    r("POST", "/api/v1/modules", Op::AddModule),
    r("POST", "/api/v1/modules/{name}/start", Op::StartModule),
    r("POST", "/api/v1/modules/{name}/stop", Op::StopModule),
    r("GET", "/api/v1/cores", Op::Cores),
    r("GET", "/api/v1/alerts", Op::Alerts),
    r("POST", "/api/v1/alerts/report", Op::ReportAlerts),
];

/// How a request's method and path met the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a> {
    /// This route, with the segments its `{…}` parameters matched, in order.
    Found(&'a Route, Vec<&'a str>),
    /// The path exists, not with this method: the methods it has.
    WrongMethod(Vec<&'static str>),
    /// No route has this path.
    NotFound,
}

/// Finds the route for `method` on `path` (without its query string). `HEAD`
/// is answered like `GET`.
pub fn find<'a>(method: &str, path: &'a str) -> Match<'a> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    let mut allowed = Vec::new();
    for route in ROUTES {
        let Some(params) = matches(route.path, &segments) else {
            continue;
        };
        if route.method.eq_ignore_ascii_case(method) {
            return Match::Found(route, params);
        }
        if !allowed.contains(&route.method) {
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::WrongMethod(allowed)
    }
}

/// The parameters `pattern` takes from `segments`, if it matches them.
fn matches<'a>(pattern: &str, segments: &[&'a str]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') && part.ends_with('}') {
            if seg.is_empty() {
                return None;
            }
            params.push(*seg);
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn op(method: &str, path: &str) -> Option<Op> {
        match find(method, path) {
            Match::Found(r, _) => Some(r.op),
            _ => None,
        }
    }

    #[test]
    fn literal_paths_win_over_patterns() {
        assert_eq!(op("GET", "/api/v1/events/export"), Some(Op::ExportEvents));
        assert_eq!(op("GET", "/api/v1/events/42"), Some(Op::Event));
        match find("GET", "/api/v1/nodes/77/approve") {
            Match::WrongMethod(m) => assert_eq!(m, vec!["POST"]),
            other => panic!("{other:?}"),
        }
        match find("GET", "/api/v1/modules/alerts/start") {
            Match::WrongMethod(m) => assert_eq!(m, vec!["POST"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_are_whole_segments() {
        match find("POST", "/api/v1/nodes/12/commands") {
            Match::Found(r, p) => assert_eq!((r.op, p), (Op::NodeCommand, vec!["12"])),
            other => panic!("{other:?}"),
        }
        assert_eq!(find("GET", "/api/v1/nodes//approve"), Match::NotFound);
        assert_eq!(find("GET", "/api/v1/nodes/1/2"), Match::NotFound);
        assert_eq!(find("GET", "/api/v2/nodes"), Match::NotFound);
        assert_eq!(find("GET", "/"), Match::NotFound);
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        match find("PUT", "/api/v1/nodes/3") {
            Match::WrongMethod(m) => assert_eq!(m, vec!["GET", "DELETE"]),
            other => panic!("{other:?}"),
        }
        match find("DELETE", "/api/v1/modules") {
            Match::WrongMethod(m) => assert_eq!(m, vec!["GET", "POST"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(op("HEAD", "/health"), Some(Op::Health));
    }

    /// (method, path) of every operation in the OpenAPI document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch", "head"].contains(&method.as_str()) {
                    ops.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not in core/api/openapi.json: {undocumented:?}; \
             documented but not served: {unserved:?}"
        );
        assert_eq!(served.len(), ROUTES.len(), "a route is listed twice");
    }

    #[test]
    fn public_routes_say_so_in_the_document() {
        let doc: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for r in ROUTES {
            let security = &doc["paths"][r.path][r.method.to_lowercase()]["security"];
            let open = security.as_array().is_some_and(|s| s.is_empty());
            assert_eq!(
                open, r.public,
                "{} {}: security {security}",
                r.method, r.path
            );
        }
    }
}
