//! The OpenAPI document lists exactly the routes the service serves.

use crate::helpers::{spawn_app_with, TestRedis};
use std::collections::BTreeSet;

/// (METHOD, path) pairs the route table registers, read from the `resource(path, allow)` calls
/// of `src/routes` and the prefixes they are mounted under (HEAD goes with every GET).
fn served_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (file, prefixes) in [
        ("src/routes/mod.rs", vec![""]),
        ("src/routes/admin/mod.rs", vec!["/api/admin"]),
    ] {
        let source = std::fs::read_to_string(file).unwrap();
        let sale_routes = source
            .split("pub fn sale_routes")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .unwrap_or_default()
            .to_owned();
        for call in source.split("resource(\"").skip(1) {
            let path = call.split('"').next().unwrap();
            let allow = call
                .split_once(", ")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            let allow = allow.split(')').next().unwrap_or_default().trim();
            let methods: Vec<&str> = if allow.ends_with("READ") {
                vec!["GET"]
            } else {
                let literal = allow.trim_start_matches('"').split('"').next().unwrap();
                literal.split(", ").filter(|m| *m != "HEAD").collect()
            };
            let mounts: Vec<&str> =
                if file.ends_with("mod.rs") && sale_routes.contains(&format!("\"{path}\"")) {
                    vec!["/api/sales/{saleId}", "/api/sale"]
                } else {
                    prefixes.clone()
                };
            for mount in mounts {
                for method in &methods {
                    routes.insert((method.to_string(), format!("{mount}{path}")));
                }
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_document_lists_every_route_the_service_serves_and_no_other() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("ADMIN_TOKEN", "an-admin-token-for-tests"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_for_the_openapi_test"),
        ],
    )
    .await;

    let doc: serde_json::Value = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let served = served_routes();
    assert!(served.len() >= 20, "{served:?}");
    assert_eq!(documented, served);
    // Every documented route answers (no 404 NOT_FOUND, no 405) on the running service.
    for (method, path) in &documented {
        let url = app.url(
            &path
                .replace("{saleId}", "default")
                .replace("{userId}", "u1")
                .replace("{orderNumber}", "1"),
        );
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.http.request(method.clone(), url).send().await.unwrap();
        assert_ne!(reply.status(), 405, "{method} {path}");
        if reply.status() == 404 {
            let body: serde_json::Value = reply.json().await.unwrap_or_default();
            assert_ne!(body["code"], "NOT_FOUND", "{method} {path} is not served");
        }
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    for code in [
        "PURCHASED",
        "SOLD_OUT",
        "RATE_LIMITED",
        "SERVICE_UNAVAILABLE",
        "SALE_NOT_FOUND",
    ] {
        assert!(codes.contains(&code), "{code}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
