//! `GET /`: the demo page, embedded in the binary (HTML, CSS and plain JS from `web/`), with a
//! strict Content-Security-Policy: nothing inline, nothing from other hosts.

use actix_web::{http::header, HttpResponse};

/// The page's policy: its own script, style and event stream, nothing else, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        // Short: a new release of the binary ships a new page.
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .body(body)
}

#[utoipa::path(get, path = "/", tag = "operations", operation_id = "page",
    responses((status = 200, description = "The demo page", content_type = "text/html", body = String)))]
pub async fn index() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
}

#[utoipa::path(get, path = "/app.js", tag = "operations", operation_id = "page_script",
    responses((status = 200, description = "The demo page's script", content_type = "text/javascript", body = String)))]
pub async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
}

#[utoipa::path(get, path = "/style.css", tag = "operations", operation_id = "page_style",
    responses((status = 200, description = "The demo page's style", content_type = "text/css", body = String)))]
pub async fn style() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    )
}
