//! The slices that drove a roll-up's move as a small table with bars: the
//! explanation page and the pre-read show it where the digest writes lines.

use maud::{Markup, html};

use crate::model::{Driver, Finding};

/// `why` of a finding without its drivers' lines (the table shows them).
pub fn why_without_drivers(f: &Finding) -> String {
    crate::model::split_drivers(&super::why(f)).0
}

/// The drivers `f`'s note names (none for most findings).
pub fn of(f: &Finding) -> Vec<Driver> {
    f.hit
        .note
        .as_deref()
        .map(crate::model::drivers)
        .unwrap_or_default()
}

/// A table: slice, its change against its own expected value, its share of
/// the total's gap with a bar (capped at the cell; a share can pass 100 %
/// when other slices moved the other way, which a line under it says).
/// Nothing when there are no drivers.
pub fn table(drivers: &[Driver]) -> Markup {
    let over = drivers.iter().any(|d| d.share_pct > 100.0);
    html! {
        @if !drivers.is_empty() {
            table.drivers style="border-collapse:collapse;margin:8px 0;font-size:14px" {
                caption style="text-align:left;font-weight:600;padding-bottom:4px" { "What drove it" }
                thead {
                    tr {
                        th style="text-align:left;padding:2px 10px 2px 0" { "Slice" }
                        th style="text-align:right;padding:2px 10px" { "vs its expected" }
                        th style="text-align:left;padding:2px 0 2px 10px" { "Share of the gap" }
                    }
                }
                tbody {
                    @for d in drivers {
                        tr {
                            td style="padding:2px 10px 2px 0" { (d.slice) }
                            td style="text-align:right;padding:2px 10px" { (format!("{:+.0}%", d.change_pct)) }
                            td style="padding:2px 0 2px 10px;white-space:nowrap" {
                                span style=(format!(
                                    "display:inline-block;height:10px;width:{:.0}px;background:#2f5fb3;margin-right:6px;vertical-align:middle",
                                    d.share_pct.clamp(0.0, 100.0) * 1.2
                                )) {}
                                (format!("{:.0}%", d.share_pct))
                            }
                        }
                    }
                }
            }
            @if over {
                p style="margin:0;color:#666;font-size:13px" { "A share passes 100% when other slices moved the other way." }
            }
        }
    }
}
