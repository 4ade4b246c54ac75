//! No `count(*)` on request paths (F6.3): every SQL statement the app sends is captured from
//! sqlx's own statement log (target `sqlx::query`, which carries each statement's text)
//! while the social, story, notification and following-feed request paths run over HTTP, and none may count rows. The repair
//! command, which does count, runs under the same capture afterwards to prove the capture
//! would catch one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use quicktok_testkit::AppSandbox;
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every statement sqlx logged, in order.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn since(&self, start: usize) -> Vec<String> {
        self.0.lock().unwrap()[start..].to_vec()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// sqlx logs a statement's first words as `summary` and, when there are more, the whole
/// text as `db.statement`.
#[derive(Default)]
struct SqlText(String);

impl Visit for SqlText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.0.push_str(value);
            self.0.push(' ');
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.0.push_str(&format!("{value:?} "));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut text = SqlText::default();
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
}

fn counts_rows(sql: &str) -> bool {
    let folded: String = sql.to_ascii_lowercase().split_whitespace().collect();
    folded.contains("count(")
}

#[tokio::test]
async fn social_request_paths_issue_no_count_queries() {
    let statements = Statements::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(statements.clone()),
    )
    .unwrap();

    let app = AppSandbox::start().await.unwrap();
    let a = app.uploader("ann").await.unwrap();
    let b = app.uploader("bob").await.unwrap();
    let video = app.published_video(&a.user_id, false).await.unwrap();
    let story = app.published_story(&a.user_id, 5_000).await.unwrap();

    let start = statements.len();
    let send = |method: http::Method, path: String, token: Option<&str>, body: Option<Value>| {
        let mut request = app.client.request(method, app.url(&path));
        if let Some(t) = token {
            request = request.bearer_auth(t.to_owned());
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use http::Method;
    let (bt, at) = (Some(b.token.as_str()), Some(a.token.as_str()));
    let v = &video;
    let (status, comment) =
        send(Method::POST, format!("/api/v1/videos/{v}/comments"), bt, Some(json!({"text": "hi"})))
            .await;
    assert_eq!(status, 201);
    let reply = json!({"text": "hello", "reply_to": comment["id"]});
    let steps = [
        (Method::POST, format!("/api/v1/videos/{v}/like"), bt, None),
        (Method::DELETE, format!("/api/v1/videos/{v}/like"), bt, None),
        (Method::POST, format!("/api/v1/videos/{v}/like"), bt, None),
        (Method::POST, format!("/api/v1/videos/{v}/comments"), at, Some(reply)),
        (Method::POST, format!("/api/v1/videos/{v}/share"), bt, Some(json!({}))),
        (Method::POST, format!("/api/v1/users/{}/follow", a.user_id), bt, None),
        (Method::DELETE, format!("/api/v1/users/{}/follow", a.user_id), bt, None),
        (Method::POST, format!("/api/v1/users/{}/follow", a.user_id), bt, None),
        (Method::GET, format!("/api/v1/videos/{v}"), None, None),
        (Method::GET, "/api/v1/videos".to_owned(), None, None),
        (Method::GET, format!("/api/v1/users/{}", a.user_id), bt, None),
        (Method::GET, format!("/api/v1/users/{}/followers", a.user_id), None, None),
        (Method::GET, format!("/api/v1/videos/{v}/comments"), bt, None),
        (
            Method::GET,
            format!("/api/v1/comments/{}/replies", comment["id"].as_str().unwrap()),
            None,
            None,
        ),
        (Method::DELETE, format!("/api/v1/comments/{}", comment["id"].as_str().unwrap()), bt, None),
        (Method::GET, "/api/v1/stories".to_owned(), bt, None),
        (Method::GET, format!("/api/v1/users/{}/stories", a.user_id), bt, None),
        (Method::POST, format!("/api/v1/stories/{story}/seen"), bt, None),
        (Method::GET, "/api/v1/stories".to_owned(), bt, None),
        (Method::POST, format!("/api/v1/videos/{story}/like"), bt, None),
        (Method::GET, "/api/v1/me/stories".to_owned(), at, None),
        (Method::GET, "/api/v1/notifications".to_owned(), at, None),
        (
            Method::POST,
            "/api/v1/notifications/read".to_owned(),
            at,
            Some(json!({"up_to": "4611686018427387904"})),
        ),
        (Method::GET, "/api/v1/notifications?limit=5".to_owned(), at, None),
        (Method::GET, "/api/v1/feed/following".to_owned(), bt, None),
        (Method::GET, "/api/v1/feed/following?limit=1".to_owned(), bt, None),
    ];
    for (method, path, token, body) in steps {
        let (status, answer) = send(method.clone(), path.clone(), token, body).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
    }
    // A flush is not a request path, but it is what request paths feed: it does not count
    // either.
    app.state().counters().flush().await.unwrap();
    let (_, shown) = send(Method::GET, format!("/api/v1/videos/{v}"), None, None).await;
    assert_eq!(shown["counts"], json!({"views": 0, "likes": 1, "comments": 0, "shares": 1}));

    let seen = statements.since(start);
    assert!(
        seen.iter().any(|s| s.contains("INSERT INTO likes"))
            && seen.iter().any(|s| s.contains("story_progress")),
        "the capture saw the request paths' statements: {seen:#?}"
    );
    let counting: Vec<_> = seen.iter().filter(|s| counts_rows(s)).collect();
    assert!(counting.is_empty(), "request paths counted rows: {counting:#?}");

    // The capture does see counting statements: the repair command counts.
    let before_repair = statements.len();
    quicktok::counters::repair(app.state().meta()).await.unwrap();
    assert!(statements.since(before_repair).iter().any(|s| counts_rows(s)));
}
