//! containerd's `hosts.toml`, read by containerd's rules (semantics-trust.md §2.3–2.4): which
//! `ca` entries apply when pulling from the registry itself. Shared by the trust writer (is a
//! foreign hosts.toml already pointing at regtrust's CA?) and the probe (what containerd
//! trusts for the host), so the two can never disagree.

use crate::host::RegistryHost;

/// What a hosts.toml says about the origin registry.
pub struct HostsToml {
    /// The `ca` entries, as written (relative paths are relative to the host dir).
    pub cas: Vec<String>,
    pub skip_verify: bool,
}

/// The `ca` entries of a hosts.toml that apply when pulling from `host` itself: the
/// top-level ones (the `server` entry, which defaults to the host) when `server` names the
/// host or is absent, and those of a `[host."https://<host>"]` table. Err when containerd
/// 1.x would fail to parse it and fall back to loose files (invalid TOML, a `ca` of the
/// wrong type, no `[host]` table: go-toml v1's "invalid `host` tree").
pub fn cas_for(bytes: &[u8], host: &RegistryHost) -> Result<HostsToml, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.message().trim().to_string())?;
    let mut out = HostsToml {
        cas: Vec::new(),
        skip_verify: false,
    };
    let hosts = match doc.get("host") {
        Some(toml::Value::Table(t)) => t,
        _ => return Err("has no [host] table (containerd 1.x: invalid `host` tree)".into()),
    };
    let server_is_host = match doc.get("server") {
        None => true,
        Some(toml::Value::String(s)) => same_authority(s, host),
        Some(_) => return Err("`server` is not a string".into()),
    };
    let mut take = |table: &toml::Table| -> Result<(), String> {
        match table.get("ca") {
            None => {}
            Some(toml::Value::String(s)) => out.cas.push(s.clone()),
            Some(toml::Value::Array(a)) => {
                for item in a {
                    match item {
                        toml::Value::String(s) => out.cas.push(s.clone()),
                        _ => return Err("a `ca` entry is not a string".into()),
                    }
                }
            }
            Some(_) => return Err("`ca` is neither a string nor a list".into()),
        }
        if let Some(toml::Value::Boolean(true)) = table.get("skip_verify") {
            out.skip_verify = true;
        }
        Ok(())
    };
    for (url, value) in hosts {
        let toml::Value::Table(t) = value else {
            return Err(format!("[host.{url:?}] is not a table"));
        };
        if same_authority(url, host) {
            take(t)?;
        }
    }
    if server_is_host {
        take(&doc)?;
    }
    out.cas.dedup();
    Ok(out)
}

/// `https://h:5000/v2` names `h:5000`; no port means 443 for https, 80 for http.
pub fn same_authority(url: &str, host: &RegistryHost) -> bool {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("https", url),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let Ok(parsed) = RegistryHost::parse(authority) else {
        return false;
    };
    let default = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    let url_port = parsed
        .port()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default);
    // The registry itself is always reached over https.
    parsed.name().eq_ignore_ascii_case(host.name()) && url_port == host.port_number()
}
