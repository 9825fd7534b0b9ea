//! Webhooks: one HTTP POST per alert. `type = "webhook"` posts the alert
//! as JSON, signed with HMAC-SHA256 when `hmac_key` is set
//! (`X-HoneyBee-Signature: sha256=<hex of HMAC(key, body)>`, as GitHub
//! signs its hooks); `type = "slack"` and `type = "teams"` post the
//! message formats of Slack's incoming webhooks and Microsoft Teams'
//! connector cards. Any 2xx answer is delivery; anything else is retried.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::alert::{Alert, Severity};
use crate::channels::{Channel, Common};
use crate::http::{self, Url};
use crate::secret::SecretSource;

/// The keys of a webhook, slack or teams channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL; a secret (Slack and Teams URLs are).
    pub url: SecretSource,
    /// Extra request headers (an `Authorization` header, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Key for the `X-HoneyBee-Signature` header (a secret).
    #[serde(default)]
    pub hmac_key: Option<SecretSource>,
    /// The signature header's name.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// PEM file of the CA to trust for https (default: the Mozilla roots).
    #[serde(default)]
    pub ca_file: Option<String>,
}

fn default_signature_header() -> String {
    "X-HoneyBee-Signature".into()
}

/// The message format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The alert as JSON.
    Json,
    /// Slack's incoming-webhook message.
    Slack,
    /// A Microsoft Teams connector card.
    Teams,
}

struct Webhook {
    url: Url,
    headers: Vec<(String, String)>,
    hmac: Option<(ring::hmac::Key, String)>,
    tls: Option<Arc<rustls::ClientConfig>>,
    format: Format,
    common: Common,
}

/// Checks the config and reads its secrets.
pub fn open(
    common: &Common,
    cfg: &WebhookConfig,
    format: Format,
) -> Result<Box<dyn Channel>, String> {
    let url = Url::parse(cfg.url.load().map_err(|e| format!("url: {e}"))?.expose())
        .map_err(|e| format!("url: {e}"))?;
    for (k, v) in &cfg.headers {
        let token = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !token || v.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!(
                "headers: {k:?} is not a valid header name and value"
            ));
        }
    }
    let hmac = match &cfg.hmac_key {
        Some(k) => {
            let key = k.load().map_err(|e| format!("hmac_key: {e}"))?;
            Some((
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes()),
                cfg.signature_header.clone(),
            ))
        }
        None => None,
    };
    let tls = if url.tls {
        Some(crate::tls::client_config(cfg.ca_file.as_deref())?)
    } else {
        None
    };
    Ok(Box::new(Webhook {
        url,
        headers: cfg
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        hmac,
        tls,
        format,
        common: common.clone(),
    }))
}

impl Channel for Webhook {
    fn send(&mut self, alert: &Alert) -> Result<(), String> {
        let body = serde_json::to_vec(&body(alert, self.format)).map_err(|e| e.to_string())?;
        let mut headers = self.headers.clone();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("X-HoneyBee-Alert-Id".into(), header_safe(&alert.id)));
        if let Some((key, name)) = &self.hmac {
            let tag = ring::hmac::sign(key, &body);
            headers.push((name.clone(), format!("sha256={}", hex(tag.as_ref()))));
        }
        let r = http::request(
            "POST",
            &self.url,
            &headers,
            &body,
            self.common.timeout,
            self.tls.as_ref(),
        )?;
        if (200..300).contains(&r.status) {
            Ok(())
        } else {
            Err(format!("POST {}: answered {}", self.url.origin(), r.status))
        }
    }
}

/// The request body for `alert` in `format`.
pub fn body(alert: &Alert, format: Format) -> Value {
    match format {
        Format::Json => json!({
            "id": alert.id,
            "rule": alert.rule,
            "severity": alert.severity.name(),
            "time": alert.time,
            "title": alert.title,
            "digest": alert.digest.as_ref().map(|d| json!({
                "summary": d.summary(), "count": d.count, "nodes": d.nodes,
                "types": d.types, "window_secs": d.window_secs,
            })),
            "fields": alert.fields.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "event": alert.ecs,
        }),
        Format::Slack => {
            let mut text = format!(
                "*{}* {}",
                alert.severity.name().to_uppercase(),
                slack_escape(&alert.title)
            );
            if let Some(d) = &alert.digest {
                text.push_str(&format!("\n{}", slack_escape(&d.summary())));
            }
            let facts: Vec<String> = alert
                .fields
                .iter()
                .map(|(k, v)| format!("*{}:* {}", slack_escape(k), slack_escape(v)))
                .collect();
            json!({
                "text": text,
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": facts.join("\n")}},
                ],
            })
        }
        Format::Teams => {
            let mut facts: Vec<Value> = vec![
                json!({"name": "severity", "value": alert.severity.name()}),
                json!({"name": "rule", "value": alert.rule}),
                json!({"name": "time", "value": alert.time}),
            ];
            facts.extend(
                alert
                    .fields
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v})),
            );
            json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": alert.title,
                "themeColor": colour(alert.severity),
                "title": alert.title,
                "text": alert.digest.as_ref().map(|d| d.summary()),
                "sections": [{"facts": facts}],
            })
        }
    }
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Low => "2E7D32",
        Severity::Medium => "F9A825",
        Severity::High => "D84315",
        Severity::Critical => "B71C1C",
    }
}

/// Slack's three control characters; `<…>` would otherwise make a link or
/// a mention out of attacker text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            id: "tripwire/7".into(),
            rule: "tripwire".into(),
            severity: Severity::High,
            time: "2026-12-07T03:00:00Z".into(),
            title: "tripwire: <@channel> extension.connection".into(),
            fields: vec![("source.ip".into(), "203.0.113.7".into())],
            digest: None,
            ecs: json!({"event": {"kind": "alert"}}),
        }
    }

    #[test]
    fn slack_messages_cannot_mention_or_link() {
        let b = body(&alert(), Format::Slack);
        let text = b["text"].as_str().unwrap();
        assert!(
            text.starts_with("*HIGH* tripwire: &lt;@channel&gt;"),
            "{text}"
        );
    }

    #[test]
    fn teams_cards_carry_the_facts() {
        let b = body(&alert(), Format::Teams);
        assert_eq!(b["@type"], "MessageCard");
        assert_eq!(b["sections"][0]["facts"][3]["name"], "source.ip");
    }

    #[test]
    fn json_bodies_carry_the_ecs_event() {
        let b = body(&alert(), Format::Json);
        assert_eq!(b["event"]["event"]["kind"], "alert");
        assert_eq!(b["fields"]["source.ip"], "203.0.113.7");
        assert_eq!(b["severity"], "high");
    }
}
