//! callout: finds outliers in weekly-business-review metrics and asks each
//! metric's owner to explain them before the review.
//!
//! # Layout
//! - [`config`]: the config file → checked [`config::Config`].
//! - [`source`]: exports → one sorted batch of series per source.
//! - [`detect`]: pure detection over all series at once.
//! - [`pipeline`]: load → detect, shared by `run` and `backfill`.
//! - [`restated`]: flagged periods whose exported value moved since (pure; the
//!   store lookup is the caller's).
//! - [`backfill`], [`app`]: the modes; [`demo`] and [`init`]: a newcomer's first
//!   run on bundled data, and a first config written from their own exports.
//! - [`review`]: the review calendar (next review, deadline).
//! - [`store`]: the SQLite state, a file per table.
//! - [`alert`]: incidents, digests, reminders, escalation, delivery.
//! - [`render`]: email subject, text and HTML; pure.
//! - [`report`]: the WBR pre-read (`callout report`): gather, build, render.
//! - [`model`], [`output`]: shared types (findings, incidents, severity, flagged periods) and
//!   findings files; [`batch`]: one source's sorted series, which `source` builds and the
//!   layers above read;
//!   [`fmt`]: the one number formatter under all of them; [`text`]: dates, numbers and
//!   headers as spreadsheets write them (below both `config` and `source`).
//! - [`links`]: the link-signing key, signed tokens and the URLs mails carry (below both
//!   [`alert`], which mails them, and [`web`], which verifies them).
//! - [`web`]: signed-link explanation pages, `/healthz`, `/metrics`; [`history`]: the series
//!   history those pages chart.

pub mod alert;
pub mod app;
pub mod backfill;
pub mod batch;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contribution;
pub mod daemon;
pub mod demo;
pub mod derived;
pub mod detect;
pub mod fmt;
pub mod history;
pub mod init;
pub mod links;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod render;
pub mod report;
pub mod restated;
pub mod review;
pub mod rollup;
pub mod schedule;
pub mod source;
pub mod store;
pub mod text;
pub mod web;
