//! Integration tests: HTTP in; status, JSON body and Redis state out. Each test starts its own
//! `redis-server` and its own app instances on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod bad_input;
mod batch;
mod checkout;
mod cluster;
mod concurrency;
mod doctor;
mod embedded;
mod events;
mod failover;
mod faults;
mod health;
mod helpers;
mod hostile;
mod http_layer;
mod key_check;
mod local_refusals;
mod logs;
mod openapi;
mod purchase;
mod queue;
mod sale_window;
mod sales;
mod security;
mod status;
mod tls;
mod user;
mod vocabulary;
mod webhooks;
