//! The core's REST API, as this module uses it: node names (cached, a
//! fixed number), the fleet's node statuses at start, and reporting what
//! was sent (`POST /api/v1/alerts/report`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Url};
use crate::secret::Secret;

/// Node names cached at most.
const MAX_NAMES: usize = 10_000;
/// How long a name (or its absence) is trusted.
const NAME_TTL: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(3);

/// A client of the core's API.
pub struct CoreApi {
    base: Url,
    token: Secret,
    names: HashMap<u64, (Option<String>, Instant)>,
}

impl CoreApi {
    /// For the API at `addr` (`host:port`).
    pub fn new(addr: &str, token: Secret) -> Result<CoreApi, String> {
        let base = Url::parse(&format!("http://{addr}/"))
            .map_err(|e| format!("API address {addr:?}: {e}"))?;
        Ok(CoreApi {
            base,
            token,
            names: HashMap::new(),
        })
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Value, String> {
        let url = Url {
            path: path.to_string(),
            ..self.base.clone()
        };
        let headers = vec![
            (
                "Authorization".to_string(),
                format!("Bearer {}", self.token.expose()),
            ),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let r = http::request(method, &url, &headers, body, TIMEOUT, None)?;
        if !(200..300).contains(&r.status) {
            return Err(format!("{method} {path}: answered {}", r.status));
        }
        serde_json::from_slice(&r.body).map_err(|e| format!("{method} {path}: {e}"))
    }

    /// The name of node `id`, from the cache or the API (`None` when the
    /// API does not answer: alerts then say "node 12").
    pub fn node_name(&mut self, id: u64) -> Option<String> {
        if let Some((name, at)) = self.names.get(&id) {
            if at.elapsed() < NAME_TTL {
                return name.clone();
            }
        }
        let name = self
            .call("GET", &format!("/api/v1/nodes/{id}"), b"")
            .ok()
            .and_then(|v| {
                v.get("node_name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        if self.names.len() >= MAX_NAMES {
            self.names.clear();
        }
        self.names.insert(id, (name.clone(), Instant::now()));
        name
    }

    /// Every node's id and status, to notice what changed while this
    /// module was not running.
    pub fn node_statuses(&self) -> Result<Vec<(u64, String)>, String> {
        let v = self.call("GET", "/api/v1/nodes", b"")?;
        let nodes = v
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or("GET /api/v1/nodes: no nodes list")?;
        Ok(nodes
            .iter()
            .filter_map(|n| {
                let id = n.get("node_id").and_then(Value::as_u64)?;
                let status = n.get("status").and_then(Value::as_str)?;
                Some((id, status.to_string()))
            })
            .collect())
    }

    /// Sends a report; the core's answer is not needed.
    pub fn report(&self, body: &Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.call("POST", "/api/v1/alerts/report", &bytes)
            .map(|_| ())
    }
}
