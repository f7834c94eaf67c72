//! Harbor's `/api/v2.0/health` (semantics-protocols.md §2.1): read only when `/v2/`'s
//! challenge says Harbor (a `/service/token` realm, the `harbor-registry` service, or
//! `Basic realm="harbor"`), so plain registries are not sent to unknown paths. Harbor
//! answers 200 even when unhealthy: `status` and each component's `status` decide.
//! It owns nothing else about Harbor; the token check lives in `registry`.
//!
//! When no runtime trusts the registry's certificate there is no trusted connection to read
//! the challenge or the health over, yet that is when an operator needs Harbor's getcert
//! hint: [`identify`] then asks the anonymous `/api/v2.0/systeminfo`, else `/api/v2.0/health`
//! (§2.1, §2.2), over a connection the caller did not verify and that carries no
//! credentials. Its answer only decides whether the fix names getcert; nothing of it is
//! reported.

use super::registry::{self, Challenge};
use crate::report::{HarborComponent, HarborHealth};
use std::time::Instant;

/// Longest component error kept (Harbor's are Go error strings, sometimes with bodies).
const MAX_ERROR: usize = 200;
/// Most components kept (Harbor has about ten).
const MAX_COMPONENTS: usize = 64;

/// True when `/v2/`'s challenges come from Harbor core.
pub fn looks_like_harbor(challenges: &[Challenge]) -> bool {
    challenges.iter().any(|c| {
        c.param("service") == Some("harbor-registry")
            || c.param("realm")
                .is_some_and(|r| r.ends_with("/service/token"))
            || (c.scheme == "basic" && c.param("realm") == Some("harbor"))
    })
}

/// Read Harbor's health; None when it is not there or not Harbor's shape.
pub async fn health(
    client: &reqwest::Client,
    base: &str,
    deadline: Instant,
) -> Option<HarborHealth> {
    let url = format!("{base}/api/v2.0/health");
    let answer = registry::get(client, &url, None, deadline).await.ok()?;
    if !answer.status.is_success() {
        return None;
    }
    parse_health(&answer.body)
}

/// Harbor's anonymous `auth_mode` values (swagger `GeneralInfo`, semantics-protocols.md §2.2).
const AUTH_MODES: [&str; 5] = ["db_auth", "ldap_auth", "uaa_auth", "http_auth", "oidc_auth"];

/// True when `base` answers `/api/v2.0/systeminfo` (else `/api/v2.0/health`) as Harbor
/// does. `client` must send no credentials and follow no redirect: its connection may be
/// unverified (the registry's CA is not installed), so the answer is a hint, never data.
pub async fn identify(client: &reqwest::Client, base: &str, deadline: Instant) -> bool {
    for (path, shape) in [
        ("/api/v2.0/systeminfo", is_systeminfo as fn(&[u8]) -> bool),
        ("/api/v2.0/health", is_health),
    ] {
        let url = format!("{base}{path}");
        if let Ok(answer) = registry::get(client, &url, None, deadline).await {
            if answer.status.is_success() && shape(&answer.body) {
                return true;
            }
        }
    }
    false
}

/// Harbor's systeminfo: a JSON object whose `auth_mode` is one of Harbor's (anonymous
/// callers always get it; `harbor_version` not since v2.13).
pub fn is_systeminfo(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("auth_mode")?
                .as_str()
                .map(|m| AUTH_MODES.contains(&m))
        })
        .unwrap_or(false)
}

/// Harbor's health: `status` healthy or unhealthy and at least one named component.
pub fn is_health(body: &[u8]) -> bool {
    parse_health(body).is_some_and(|h| {
        matches!(h.status.as_str(), "healthy" | "unhealthy")
            && !h.components.is_empty()
            && h.components.iter().all(|c| !c.name.is_empty())
    })
}

/// Parse `{"status": "...", "components": [{"name", "status", "error"?}]}`, tolerating
/// unknown fields and component names (the set changes between Harbor versions).
pub fn parse_health(body: &[u8]) -> Option<HarborHealth> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |v: &serde_json::Value, k: &str, max: usize| -> String {
        v.get(k)
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .chars()
            .take(max)
            .collect()
    };
    let status = v.get("status")?.as_str()?.chars().take(64).collect();
    let components = v
        .get("components")
        .and_then(|c| c.as_array())
        .map(|list| {
            list.iter()
                .take(MAX_COMPONENTS)
                .map(|c| HarborComponent {
                    name: text(c, "name", 64),
                    status: text(c, "status", 64),
                    error: text(c, "error", MAX_ERROR),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(HarborHealth { status, components })
}

/// A warning when Harbor says it is not healthy, naming the failing components.
pub fn unhealthy_warning(h: &HarborHealth) -> Option<String> {
    if h.status == "healthy" {
        return None;
    }
    let failing: Vec<String> = h
        .components
        .iter()
        .filter(|c| c.status != "healthy")
        .map(|c| {
            if c.error.is_empty() {
                format!("{} {}", c.name, c.status)
            } else {
                format!("{} {} ({})", c.name, c.status, c.error)
            }
        })
        .collect();
    Some(if failing.is_empty() {
        format!("Harbor reports itself {}", h.status)
    } else {
        format!("Harbor reports itself {}: {}", h.status, failing.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::registry::parse_challenges;

    #[test]
    fn harbor_is_recognised_by_its_challenge() {
        let cases = [
            (
                r#"Bearer realm="https://harbor.test/service/token",service="harbor-registry""#,
                true,
            ),
            (r#"Basic realm="harbor""#, true),
            (r#"Bearer realm="https://h:8443/service/token""#, true),
            (r#"Basic realm="regtrust-test""#, false),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
                false,
            ),
            ("", false),
        ];
        for (header, want) in cases {
            assert_eq!(
                looks_like_harbor(&parse_challenges(header)),
                want,
                "{header}"
            );
        }
    }

    #[test]
    fn harbor_is_recognised_by_its_systeminfo_or_health() {
        let cases: [(&[u8], bool, bool); 10] = [
            (br#"{"auth_mode":"db_auth","primary_auth_mode":false,"self_registration":false,"banner_message":""}"#, true, false),
            (br#"{"auth_mode":"oidc_auth","oidc_provider_name":"dex","harbor_version":"v2.12.0"}"#, true, false),
            (br#"{"auth_mode":"none"}"#, false, false),
            (br#"{"auth_mode":1}"#, false, false),
            (br#"{"status":"healthy","components":[{"name":"core","status":"healthy"}]}"#, false, true),
            (br#"{"status":"unhealthy","components":[{"name":"redis","status":"unhealthy","error":"x"}]}"#, false, true),
            (br#"{"status":"healthy"}"#, false, false),
            (br#"{"status":"UP","components":[{"name":"db","status":"UP"}]}"#, false, false),
            (br#"{"errors":[{"code":"NOT_FOUND","message":"404 page not found"}]}"#, false, false),
            (b"404 page not found\n", false, false),
        ];
        for (body, systeminfo, health) in cases {
            let shown = String::from_utf8_lossy(body);
            assert_eq!(is_systeminfo(body), systeminfo, "{shown}");
            assert_eq!(is_health(body), health, "{shown}");
        }
    }

    #[test]
    fn health_bodies() {
        let healthy = br#"{"status":"healthy","components":[{"name":"core","status":"healthy"},{"name":"database","status":"healthy"}]}"#;
        let h = parse_health(healthy).unwrap();
        assert_eq!(h.status, "healthy");
        assert_eq!(h.components.len(), 2);
        assert_eq!(unhealthy_warning(&h), None);

        let sick = br#"{"status":"unhealthy","components":[{"name":"core","status":"healthy"},{"name":"redis","status":"unhealthy","error":"dial tcp: connection refused"},{"name":"trivy","status":"unhealthy"}],"extra":1}"#;
        let h = parse_health(sick).unwrap();
        assert_eq!(
            unhealthy_warning(&h).unwrap(),
            "Harbor reports itself unhealthy: redis unhealthy (dial tcp: connection refused), trivy unhealthy"
        );

        for bad in [&b""[..], b"{", b"[]", b"{\"status\":1}", b"null", b"<html>"] {
            assert_eq!(parse_health(bad), None, "{bad:?}");
        }
        let long = format!(
            r#"{{"status":"unhealthy","components":[{{"name":"x","status":"unhealthy","error":"{}"}}]}}"#,
            "e".repeat(10_000)
        );
        let h = parse_health(long.as_bytes()).unwrap();
        assert_eq!(h.components[0].error.len(), MAX_ERROR);
        let many = format!(
            r#"{{"status":"unhealthy","components":[{}]}}"#,
            vec![r#"{"name":"c","status":"unhealthy"}"#; 1000].join(",")
        );
        assert_eq!(
            parse_health(many.as_bytes()).unwrap().components.len(),
            MAX_COMPONENTS
        );
    }
}
