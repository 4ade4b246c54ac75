//! Integration tests of register / login / refresh / logout over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use quicktok_testkit::{AppSandbox, TEST_PASSWORD};
use serde_json::{Value, json};

async fn body(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn register_login_refresh_logout() {
    let app = AppSandbox::start().await.unwrap();
    let session = app.register("Li.Wei").await.unwrap();
    assert_eq!(session["user"]["username"], "li.wei");
    assert!(session["user"]["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(session["token_type"], "Bearer");
    let access = session["access_token"].as_str().unwrap();

    let (s, me) = body(app.get("/api/v1/me", Some(access)).await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(me["username"], "li.wei");

    // Login is case-insensitive on the username.
    let (s, login) = body(
        app.post_json(
            "/api/v1/auth/login",
            &json!({"username": "LI.WEI", "password": TEST_PASSWORD}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["user"]["id"], session["user"]["id"]);

    // Refresh rotates.
    let r1 = login["refresh_token"].as_str().unwrap();
    let (s, rotated) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r1}), None).await.unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{rotated}");
    let r2 = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);

    // Logout of that session: its refresh token stops working; the other session survives.
    let access2 = rotated["access_token"].as_str().unwrap();
    let r = app
        .post_json("/api/v1/auth/logout", &json!({"refresh_token": r2}), Some(access2))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, e) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r2}), None).await.unwrap(),
    )
    .await;
    assert_eq!((s, e["error"].as_str().unwrap()), (401, "invalid_token"));
    let first_refresh = session["refresh_token"].as_str().unwrap();
    let (s, _) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first_refresh}), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    // Logout without a body ends every session.
    let r =
        app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.post_json("/api/v1/auth/logout", &json!({}), None).await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_family() {
    let app = AppSandbox::start().await.unwrap();
    let session = app.register("ana").await.unwrap();
    let stolen = session["refresh_token"].as_str().unwrap().to_owned();
    let (s, legit) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": stolen}), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let newer = legit["refresh_token"].as_str().unwrap();
    // The attacker replays the old token: refused, and the family is revoked ...
    let (s, e) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": stolen}), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["error"].as_str().unwrap()), (401, "token_reused"));
    // ... so the legitimate newer token no longer works either.
    let (s, e) = body(
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": newer}), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, e["error"].as_str().unwrap()), (401, "invalid_token"));
}

#[tokio::test]
async fn concurrent_refresh_of_one_token_succeeds_once() {
    let app = AppSandbox::start().await.unwrap();
    let session = app.register("racer").await.unwrap();
    let token = session["refresh_token"].as_str().unwrap().to_owned();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/refresh");
        let token = token.clone();
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = AppSandbox::start().await.unwrap();
    app.register("known").await.unwrap();
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (s, e1) = body(
            app.post_json(
                "/api/v1/auth/login",
                &json!({"username": "known", "password": "not the password"}),
                None,
            )
            .await
            .unwrap(),
        )
        .await;
        wrong.push(t.elapsed());
        assert_eq!(s, 401);
        let t = Instant::now();
        let (s, e2) = body(
            app.post_json(
                "/api/v1/auth/login",
                &json!({"username": "nobody", "password": "not the password"}),
                None,
            )
            .await
            .unwrap(),
        )
        .await;
        unknown.push(t.elapsed());
        assert_eq!(s, 401);
        assert_eq!(e1, e2, "identical bodies");
    }
    // Both paths run one argon2 verification: the fastest unknown-user login takes at least a
    // third of the fastest wrong-password login (an early return would be ~100x faster).
    let w = wrong.iter().min().unwrap().as_secs_f64();
    let u = unknown.iter().min().unwrap().as_secs_f64();
    assert!(u > w / 3.0, "unknown user {u:.4}s vs wrong password {w:.4}s");
}

#[tokio::test]
async fn username_and_password_rules() {
    let app = AppSandbox::start().await.unwrap();
    for (username, password) in [
        ("ab", TEST_PASSWORD),
        ("9lives", TEST_PASSWORD),
        ("has space", TEST_PASSWORD),
        ("admin", TEST_PASSWORD),
        ("okname", "short"),
    ] {
        let (s, e) = body(
            app.post_json(
                "/api/v1/auth/register",
                &json!({"username": username, "password": password}),
                None,
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, 422, "{username}: {e}");
        assert_eq!(e["error"], "validation_failed");
        assert!(e["message"].as_str().unwrap().len() > 5);
    }
    app.register("taken").await.unwrap();
    let (s, e) = body(
        app.post_json(
            "/api/v1/auth/register",
            &json!({"username": "TAKEN", "password": TEST_PASSWORD}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((s, e["error"].as_str().unwrap()), (409, "username_taken"));
    // Unknown fields and wrong types are refused, not ignored.
    let (s, e) = body(
        app.post_json(
            "/api/v1/auth/register",
            &json!({"username": "fine", "password": TEST_PASSWORD, "admin": true}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((s, e["error"].as_str().unwrap()), (422, "validation_failed"));
    let (s, _) = body(
        app.post_json(
            "/api/v1/auth/register",
            &json!({"username": 5, "password": TEST_PASSWORD}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = AppSandbox::start().await.unwrap();
    for header in ["Bearer nonsense", "Bearer ", "Basic abc", "Bearer a.b.c"] {
        let r = app
            .client
            .get(app.url("/api/v1/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let e: Value = r.json().await.unwrap();
        assert!(matches!(e["error"].as_str().unwrap(), "invalid_token" | "unauthorized"), "{e}");
    }
    // A token signed by another server's secret.
    let other = AppSandbox::start().await.unwrap();
    let foreign = other.register("visitor").await.unwrap();
    let r = app.get("/api/v1/me", foreign["access_token"].as_str()).await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn accounts_survive_a_restart() {
    let app = AppSandbox::start().await.unwrap();
    let session = app.register("persistent").await.unwrap();
    let config = app.config.clone();
    let dir = app.stop().await.unwrap();
    let app = AppSandbox::start_in(dir, config).await.unwrap();
    // Same secret file, so the old access token is still valid; the password still works.
    let r = app.get("/api/v1/me", session["access_token"].as_str()).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": "persistent", "password": TEST_PASSWORD}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn admin_usernames_are_reserved_for_the_operator() {
    let app = AppSandbox::start_with(|c| c.auth.admins = vec!["Root_Ops".into()]).await.unwrap();
    // Whoever registered a listed name first would be an administrator: refused, in any case.
    for name in ["root_ops", "ROOT_OPS"] {
        let r = app
            .post_json(
                "/api/v1/auth/register",
                &json!({"username": name, "password": TEST_PASSWORD}),
                None,
            )
            .await
            .unwrap();
        let (status, v) = body(r).await;
        assert_eq!((status, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    }
    // The operator's path creates it, and it administers.
    let ops = app.admin("root_ops").await.unwrap();
    let r = app.get("/api/v1/admin/jobs", Some(&ops.token)).await.unwrap();
    assert_eq!(r.status(), 200);
    // Only listed names go that way.
    assert!(app.admin("someone_else").await.is_err());
    let user = app.uploader("someone_else").await.unwrap();
    let r = app.get("/api/v1/admin/jobs", Some(&user.token)).await.unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await.unwrap();
}
