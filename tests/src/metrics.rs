//! Prometheus text format, parsed just enough for assertions.

use std::collections::BTreeMap;

/// The samples of one `/metrics` scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// `name{k="v",...}` (labels sorted) → value.
    samples: BTreeMap<String, f64>,
    /// The raw text.
    pub text: String,
}

impl Metrics {
    /// Parses the text exposition format; panics on a sample line that does
    /// not parse (the core must emit valid text).
    pub fn parse(text: &str) -> Metrics {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, labels, rest) = match line.find('{') {
                Some(open) => {
                    let close = line[open..]
                        .find('}')
                        .map(|c| open + c)
                        .unwrap_or_else(|| panic!("bad metrics line {line:?}"));
                    (
                        &line[..open],
                        parse_labels(&line[open + 1..close], line),
                        &line[close + 1..],
                    )
                }
                None => {
                    let sp = line
                        .find(char::is_whitespace)
                        .unwrap_or_else(|| panic!("bad metrics line {line:?}"));
                    (&line[..sp], Vec::new(), &line[sp..])
                }
            };
            let value_text = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("metrics line without a value: {line:?}"));
            let value: f64 = match value_text {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad metrics value in {line:?}")),
            };
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            samples.insert(Self::key(name.trim(), &pairs), value);
        }
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// The canonical key of a sample.
    pub fn key(name: &str, labels: &[(&str, &str)]) -> String {
        if labels.is_empty() {
            return name.to_owned();
        }
        let mut l: Vec<_> = labels.to_vec();
        l.sort();
        let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    }

    /// The sample's value, if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&Self::key(name, labels)).copied()
    }

    /// The sample's value; panics with the scrape if it is missing.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            panic!(
                "metric {} missing from /metrics:\n{}",
                Self::key(name, labels),
                self.text
            )
        })
    }

    /// Shorthand for a sample with one label.
    #[track_caller]
    pub fn labeled(&self, name: &str, label: &str, value: &str) -> f64 {
        self.value(name, &[(label, value)])
    }

    /// Every sample key.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.samples.keys().map(String::as_str)
    }
}

fn parse_labels(inner: &str, line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .unwrap_or_else(|| panic!("bad labels in {line:?}"));
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let after = after
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
        out.push((key, value));
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_plain_samples() {
        let m = Metrics::parse(
            "# HELP x y\n# TYPE a counter\na 3\nb{reason=\"too_long\"} 1\nc{k=\"v\",a=\"b\"} 2.5\n",
        );
        assert_eq!(m.get("a", &[]), Some(3.0));
        assert_eq!(m.labeled("b", "reason", "too_long"), 1.0);
        assert_eq!(m.get("c", &[("k", "v"), ("a", "b")]), Some(2.5));
        assert_eq!(m.get("b", &[("reason", "other")]), None);
    }
}
