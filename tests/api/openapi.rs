//! The OpenAPI document lists exactly the routes the service serves, and is the one committed in
//! `clients/js/openapi.json` (the typed client's source) whatever the configuration.

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

/// The committed copy the typed client is generated from (README, From a React app).
const COMMITTED: &str = include_str!("../../clients/js/openapi.json");

#[tokio::test]
async fn the_served_document_is_the_committed_one_whatever_the_configuration() {
    let redis = TestRedis::start().await;
    let plain = spawn_app_with(&redis, &[]).await;
    let trusted = spawn_app_with(
        &redis,
        &[
            ("AUTH_JWT_SECRET", "a-test-secret-of-at-least-32-characters"),
            ("ADMIN_TOKEN", "an-admin-token-for-tests"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_for_the_openapi_test"),
            (
                "WAITING_ROOM_SECRET",
                "a-waiting-room-secret-of-32-characters",
            ),
        ],
    )
    .await;
    for app in [&plain, &trusted] {
        let reply = app
            .http
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        assert_eq!(
            reply.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let served = reply.text().await.unwrap();
        assert!(
            served == COMMITTED,
            "clients/js/openapi.json is stale: run `cargo run -- openapi > clients/js/openapi.json` \
             and `npm --prefix clients/js run generate`"
        );
    }
    let printed = crate::helpers::binary::flashsale()
        .arg("openapi")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(String::from_utf8(printed.stdout).unwrap() == COMMITTED);

    // A path parameter is in the path; the rest are query or header parameters.
    for (path, item) in doc_paths(COMMITTED) {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name}"
                    );
                }
            }
        }
    }

    // The purchase's answers are a union by code: PURCHASED always has its order.
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let variants = doc["components"]["schemas"]["PurchaseAnswer"]["oneOf"]
        .as_array()
        .unwrap();
    let purchased = variants
        .iter()
        .find(|v| v["allOf"][1]["properties"]["code"]["enum"][0] == "PURCHASED")
        .unwrap();
    assert!(purchased["allOf"][1]["required"]
        .as_array()
        .unwrap()
        .contains(&"orderNumber".into()));
    let mut codes: Vec<&str> = variants
        .iter()
        .flat_map(|v| {
            v["allOf"][1]["properties"]["code"]["enum"]
                .as_array()
                .unwrap()
        })
        .map(|code| code.as_str().unwrap())
        .collect();
    codes.sort_unstable();
    let mut every: Vec<&str> = doc["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    every.sort_unstable();
    assert_eq!(codes, every, "each code in exactly one variant");
}

fn doc_paths(text: &str) -> Vec<(String, serde_json::Value)> {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| (path.clone(), item.clone()))
        .collect()
}
