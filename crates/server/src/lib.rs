//! opencode-share-server: a self-hosted share service for opencode sessions. It speaks both of
//! opencode's share protocols (legacy `/share_*`, ShareNext `/api/share...`), stores shares in
//! SQLite (embedded, default) or PostgreSQL (several processes), and serves a live viewer page.

mod admin;
mod api_next;
mod api_v1;
mod app;
pub mod append;
mod client;
pub mod config;
mod conn;
mod encoding;
mod error;
mod http;
mod hub;
pub mod item;
mod limiter;
mod listen;
mod live;
mod metrics;
mod observe;
mod redact;
mod secret;
mod server;
mod service;
mod state;
pub mod store;
mod streams;
mod tail;
mod viewer;
mod web;

pub use admin::cli::run as run_admin;
pub use config::{AdminCommand, Cli, Command, Config, Limits, LogFormat};
pub use server::{Running, router, serve, spawn};
