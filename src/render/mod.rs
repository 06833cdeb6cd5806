//! Messages and charts for people: the digest one owner receives, the
//! reminder and escalation emails, the test email, and the charts (SVG for
//! pages, PNG for mail) they and the web pages show. Every piece of HTML is a
//! maud template, so what a person or a config wrote is escaped by
//! construction; numbers are written by [`crate::fmt`].
//!
//! Pure: everything comes in as arguments (incidents, the review settings,
//! `now`), nothing is read from the clock, the store or the network.
//!
//! Layout: `words` (a finding in words), `problems` (export and data-health
//! lines for the data team), `digest` (the digest's sections, text and
//! HTML), `layout` (the page and button every message shares), `reminders`
//! (reminder and escalation), `test_email`, `chart` and `raster` (drawing).
//!
//! Must not: decide who gets what (that is `alert`), or send anything; it
//! imports nothing from `alert`.

pub mod chart;
pub mod chat;
mod digest;
pub mod drivers;
mod layout;
mod problems;
pub mod raster;
pub mod reminders;
mod test_email;
mod words;

pub use digest::{
    Charts, Digest, Image, ItemExtras, Links, PlanLine, PlanLines, chart_png, digest,
};
pub use test_email::test_email;
pub use words::{deviation_pct, why};

#[cfg(test)]
pub(crate) mod tests;
