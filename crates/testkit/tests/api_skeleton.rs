//! Integration tests of the API skeleton: probes, OpenAPI, error shape, limits, CORS,
//! metrics, request ids, rate limits and gray-release flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quicktok_api::FlagRule;
use quicktok_testkit::{AppSandbox, TEST_PASSWORD};
use serde_json::{Value, json};

#[tokio::test]
async fn probes_and_openapi() {
    let app = AppSandbox::start().await.unwrap();
    let r = app.get("/healthz", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get("/readyz", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "ready");

    let r = app.get("/api/v1/openapi.json", None).await.unwrap();
    assert_eq!(r.status(), 200);
    let spec: Value = r.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/me",
        "/me/flags",
        "/notifications",
        "/notifications/read",
        "/notifications/stream",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the spec");
    }
    assert!(spec["components"]["securitySchemes"].get("bearer").is_some());

    let r = app.get("/", None).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_error_has_the_json_shape() {
    let app = AppSandbox::start().await.unwrap();
    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], code, "{e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    };
    check(app.get("/api/v1/nope", None).await.unwrap(), 404, "not_found").await;
    check(
        app.client.delete(app.url("/api/v1/auth/login")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    check(r, 400, "invalid_json").await;
    let r = app.client.post(app.url("/api/v1/auth/login")).body("username=a").send().await.unwrap();
    check(r, 415, "unsupported_media_type").await;
    let huge = "x".repeat(200 * 1024);
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": huge, "password": TEST_PASSWORD}),
            None,
        )
        .await
        .unwrap();
    check(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn request_ids_cors_and_metrics() {
    let app = AppSandbox::start().await.unwrap();
    let r = app.get("/healthz", None).await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "given-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "given-id-1");

    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,authorization")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    app.register("metered").await.unwrap();
    let text = app.get("/metrics", None).await.unwrap().text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/api/v1/auth/register""#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = AppSandbox::start_with(|c| {
        c.rate_limit.ip_per_second = 1;
        c.rate_limit.ip_burst = 5;
    })
    .await
    .unwrap();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..8 {
        let r = app.get("/healthz", None).await.unwrap();
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    let r = last.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    assert_eq!(r.headers()["ratelimit-limit"], "5");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "rate_limited");
}

#[tokio::test]
async fn users_have_their_own_bucket() {
    let app = AppSandbox::start_with(|c| {
        c.rate_limit.user_per_second = 1;
        c.rate_limit.user_burst = 3;
    })
    .await
    .unwrap();
    let a = app.register("alpha").await.unwrap();
    let b = app.register("bravo").await.unwrap();
    let ta = a["access_token"].as_str();
    let tb = b["access_token"].as_str();
    let mut a_statuses = Vec::new();
    for _ in 0..5 {
        a_statuses.push(app.get("/api/v1/me", ta).await.unwrap().status().as_u16());
    }
    assert!(a_statuses.contains(&429), "{a_statuses:?}");
    let r = app.get("/api/v1/me", tb).await.unwrap();
    assert_eq!(r.status(), 200, "another user is not limited by alpha's bucket");
    assert!(r.headers().contains_key("ratelimit-remaining"));
}

#[tokio::test]
async fn login_attempts_are_limited_per_address() {
    let app = AppSandbox::start_with(|c| {
        c.rate_limit.auth_per_minute = 1;
        c.rate_limit.auth_burst = 3;
    })
    .await
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                &json!({"username": "guess", "password": "guessing123"}),
                None,
            )
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    // Other endpoints are not affected by the password bucket.
    assert_eq!(app.get("/healthz", None).await.unwrap().status(), 200);
}

#[tokio::test]
async fn gray_release_flags() {
    let app = AppSandbox::start_with(|c| {
        c.flags.insert("everyone".into(), FlagRule { percent: 100, ..Default::default() });
        c.flags.insert("nobody".into(), FlagRule { percent: 0, ..Default::default() });
        c.flags.insert("half".into(), FlagRule { percent: 50, ..Default::default() });
        c.flags.insert(
            "north_only".into(),
            FlagRule { percent: 100, regions: vec!["cn-north".into()], ..Default::default() },
        );
    })
    .await
    .unwrap();
    let mut half_on = 0;
    let mut first_answer = None;
    for i in 0..20 {
        let s = app.register(&format!("user{i}")).await.unwrap();
        let token = s["access_token"].as_str();
        let f: Value = app.get("/api/v1/me/flags", token).await.unwrap().json().await.unwrap();
        assert_eq!(f["flags"]["everyone"], true);
        assert_eq!(f["flags"]["nobody"], false);
        assert_eq!(f["flags"]["north_only"], false);
        if f["flags"]["half"] == true {
            half_on += 1;
        }
        let r = app
            .client
            .get(app.url("/api/v1/me/flags"))
            .bearer_auth(token.unwrap())
            .header("x-quicktok-region", "cn-north")
            .send()
            .await
            .unwrap();
        let f2: Value = r.json().await.unwrap();
        assert_eq!(f2["flags"]["north_only"], true);
        assert_eq!(f2["region"], "cn-north");
        // Stable: asking again gives the same answer.
        let again: Value = app.get("/api/v1/me/flags", token).await.unwrap().json().await.unwrap();
        assert_eq!(again["flags"], f["flags"]);
        if i == 0 {
            first_answer = Some(f);
        }
    }
    assert!(first_answer.is_some());
    // 20 users at 50%: all-or-nothing has probability 2 * 0.5^20.
    assert!((1..20).contains(&half_on), "{half_on}");
    let r = app.get("/api/v1/me/flags", None).await.unwrap();
    assert_eq!(r.status(), 401);
}
