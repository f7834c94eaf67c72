//! `POST /api/v1/preflight` and the admin pages against hostile and wrong input, on the
//! real server in-process: every bad request is a 400 naming the field and the problem, a
//! private key is never accepted, the read token guards the pre-flight and the pages like
//! every other read (Basic challenge for pages, Bearer for the API), and a node name or a
//! host full of markup stays text.

mod aggregator_support;

use aggregator_support::*;
use regtrust::report::Verdict;

fn chain_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["harbor.local".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

async fn preflight(base: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = http()
        .post(format!("{base}/api/v1/preflight"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn preflight_refuses_bad_requests_with_the_field_named() {
    let s = InProcess::start(Options {
        read_token: Some(READ_TOKEN),
        ..Options::default()
    })
    .await;
    let pem = chain_pem();
    let key = "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----\n";
    let body = |registry: &str, chain: &str| {
        serde_json::json!({ "registry": registry, "chain_pem": chain }).to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "pre-flight request"),
        ("{".into(), "pre-flight request"),
        ("[]".into(), "pre-flight request"),
        (r#"{"registry":"harbor.local"}"#.into(), "chain_pem"),
        (
            r#"{"registry":"harbor.local","chain_pem":"x","extra":1}"#.into(),
            "unknown field",
        ),
        (body("../etc", &pem), "registry \"../etc\""),
        (body("harbor.local/team", &pem), "has a path"),
        (body("harbor.local", ""), "chain_pem"),
        (body("harbor.local", "not pem"), "chain_pem"),
        (body("harbor.local", &format!("{pem}{key}")), "private key"),
        (body("harbor.local", key), "private key"),
        (body("\u{1b}[2Jharbor", &pem), "registry"),
    ];
    for (b, part) in cases {
        let (status, v) = preflight(&s.base, Some(READ_TOKEN), &b).await;
        assert_eq!(status, 400, "{b}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(part), "{b}: {e}");
        assert!(!e.contains("MIIBVQ"), "a key's bytes echoed: {e}");
        assert!(!e.contains('\u{1b}'), "raw ESC in an error: {e:?}");
    }
    // The read token guards it (Bearer challenge); a write token is not a read token.
    let ok = body("harbor.local", &pem);
    assert_eq!(preflight(&s.base, None, &ok).await.0, 401);
    assert_eq!(preflight(&s.base, Some(WRITE_TOKEN), &ok).await.0, 401);
    let (status, v) = preflight(&s.base, Some(READ_TOKEN), &ok).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["registry"], "harbor.local");
    assert_eq!(v["nodes_total"], 0, "no node reports it yet: {v}");
    // Pages take the read token too, and a browser is asked for Basic.
    for path in ["/", "/nodes/x", "/registries/harbor.local"] {
        let r = http().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "{path}"
        );
    }
    let r = http()
        .get(s.url("/api/v1/registries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    // /healthz stays open; an unknown path is a plain 404 without a token.
    assert_eq!(
        http().get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        http().get(s.url("/nope")).send().await.unwrap().status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn pages_keep_hostile_names_as_text_and_answer_unknown_ones_with_404() {
    let s = InProcess::start(Options::default()).await;
    let evil = "<img src=x onerror=alert(1)>";
    let r = report(
        evil,
        &[("harbor.local:8443", Verdict::UnknownAuthority, evil, evil)],
    );
    assert_eq!(
        post(&s.base, Some(WRITE_TOKEN), r.to_json()).await.status(),
        200
    );
    let get = |path: String| async move {
        let r = http().get(path).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (status, home) = get(s.url("/")).await;
    assert_eq!(status, 200);
    assert!(!home.contains("<img"), "{home}");
    // The node's link percent-encodes the name; following it finds the node.
    let href = "/nodes/%3Cimg%20src=x%20onerror=alert(1)%3E";
    assert!(home.contains(href), "{home}");
    let (status, node) = get(s.url(href)).await;
    assert_eq!(status, 200, "{node}");
    assert!(!node.contains("<img") && node.contains("&lt;img"), "{node}");
    let (status, reg) = get(s.url("/registries/harbor.local:8443")).await;
    assert_eq!(status, 200);
    assert!(!reg.contains("<img"), "{reg}");
    // Spelled another way, the same registry.
    let (status, same) = get(s.url("/registries/HARBOR.local%3A8443")).await;
    assert_eq!(status, 200);
    assert!(same.contains("1 nodes:"), "{same}");
    let (status, body) = get(s.url("/nodes/nobody")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(s.url("/registries/..%2Fetc")).await;
    assert_eq!(status, 404, "{body}");
    // ?q= with markup is echoed escaped; a bad page number is a 400 naming the query.
    let (status, q) = get(s.url("/?q=%3Cb%3E")).await;
    assert_eq!(status, 200);
    assert!(q.contains("value=\"&lt;b&gt;\""), "{q}");
    let (status, body) = get(s.url("/?page=minus")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("query"), "{body}");
    s.stop().await;
}

/// The pages' facts come back after a restart: read from the stored reports (at start, in
/// the background, or by the first page that needs them), not only kept from the posts.
#[test]
fn fingerprints_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let db = dir.path().join("fleet.db");
    let args = ["--token-file", wtok.to_str().unwrap()];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sha = "0e".repeat(32);
    let mut r = report("node-1", &[("harbor.local", Verdict::Ok, "", "")]);
    r.registries[0].probes[0].trusted = vec![regtrust::report::TrustedCa {
        subject: "CN=Kept CA".into(),
        sha256: sha.clone(),
        not_after: "2100-01-01T00:00:00Z".into(),
        days_left: 1,
        file: "/etc/docker/certs.d/harbor.local/ca.crt".into(),
        pem: String::new(),
    }];
    let page = |base: &str| {
        let url = format!("{base}/registries/harbor.local");
        rt.block_on(async { http().get(url).send().await.unwrap().text().await.unwrap() })
    };
    let mut agg = Binary::start(&db, &args);
    rt.block_on(async {
        assert_eq!(
            post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                .await
                .status(),
            200
        );
    });
    assert!(page(&agg.base).contains("trusted by 1 nodes"));
    agg.kill9();
    let agg = Binary::start(&db, &args);
    let html = page(&agg.base);
    assert!(
        html.contains(&sha) && html.contains("trusted by 1 nodes"),
        "{html}"
    );
}
