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

pub async fn index() -> HttpResponse {
    asset(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
}

pub async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
}

pub async fn style() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    )
}
