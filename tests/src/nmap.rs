//! nmap's XML report (`-oX -`), read as far as the deception test and the
//! `deception-scan` benchmark need: each port's state and what `-sV`
//! called it. A few string searches, since nmap writes each `<port>` in one
//! fixed shape.

/// `nmap -sV --allports -Pn -n -p PORTS -oX - 127.0.0.1`: version
/// detection on every port listed (`--allports`: by default nmap leaves
/// the printer port 9100 out of it), no ping, no DNS, the XML report on
/// stdout.
pub fn version_scan(ports: &str) -> std::io::Result<std::process::Output> {
    std::process::Command::new("nmap")
        .args([
            "-sV",
            "--allports",
            "-Pn",
            "-n",
            "-p",
            ports,
            "-oX",
            "-",
            "127.0.0.1",
        ])
        .output()
}

/// One `<port>` of the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Port {
    pub port: u16,
    /// `open`, `closed`, `filtered`, …
    pub state: String,
    /// The service name (`ftp`, `http`, `tcpwrapped`, `unknown`, …).
    pub name: String,
    /// The product, empty when `-sV` named none.
    pub product: String,
    pub version: String,
    pub extrainfo: String,
}

/// `attr="value"` in an XML element's text.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element.get(start..)?.find('"')?;
    element.get(start..start + len)
}

/// Each port of nmap's XML report, in its order.
pub fn ports(xml: &str) -> Vec<Port> {
    xml.split("<port ")
        .skip(1)
        .filter_map(|p| {
            let p = p.split("</port>").next()?;
            let port = attr(p, "portid")?.parse().ok()?;
            let state = p
                .split("<state")
                .nth(1)
                .and_then(|s| attr(s, "state"))
                .unwrap_or_default();
            let service = p.split("<service").nth(1).unwrap_or_default();
            let get = |name| attr(service, name).unwrap_or_default().to_string();
            Some(Port {
                port,
                state: state.to_string(),
                name: get("name"),
                product: get("product"),
                version: get("version"),
                extrainfo: get("extrainfo"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_state_name_product_and_version() {
        let xml = r#"<ports><port protocol="tcp" portid="21"><state state="open" reason="syn-ack"/><service name="ftp" product="vsftpd" version="3.0.3" ostype="Unix" method="probed" conf="10"/></port>
<port protocol="tcp" portid="9100"><state state="open" reason="syn-ack"/><service name="tcpwrapped" method="probed" conf="8"/></port></ports>"#;
        let p = super::ports(xml);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].port, p[0].state.as_str(), p[0].name.as_str()),
            (21, "open", "ftp")
        );
        assert_eq!(
            (p[0].product.as_str(), p[0].version.as_str()),
            ("vsftpd", "3.0.3")
        );
        assert_eq!(
            (p[1].name.as_str(), p[1].product.as_str()),
            ("tcpwrapped", "")
        );
    }
}
