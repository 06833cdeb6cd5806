//! `callout backfill`: history through the same pipeline as the daemon.
//!
//! Every point in the range is evaluated with only the data at or before it
//! (the kernels are causal), findings go to a file, and a summary to stderr.
//! Nothing is sent unless `--send` is given.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use crate::cli::BackfillArgs;
use crate::config::Config;
use crate::output;
use crate::pipeline::{self, Evaluation, Window};

/// Run a backfill and write its findings; the evaluation is returned for the
/// store step and the exit code.
pub fn run(cfg: &Config, args: &BackfillArgs) -> anyhow::Result<Evaluation> {
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::hidden();
    if show {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} series ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message("loading sources");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    let window = Window::Dates(args.from, args.to);
    // explanations: loaded from the store once the explanations table lands
    let ev = pipeline::evaluate(cfg, window, None, &[], &|done, total| {
        if show && (done == 1 || done % 64 == 0 || done == total) {
            bar.set_length(total as u64);
            bar.set_message("detecting");
            bar.set_position(done as u64);
        }
    });
    bar.finish_and_clear();

    // the window already ends at `--to`
    let findings = &ev.detection.findings;
    let key_sets: Vec<Vec<String>> = ev.batches.iter().map(|b| b.key_columns.clone()).collect();
    let keys = output::key_columns(findings, &key_sets);
    write_findings(args.output.as_deref(), findings, &keys)?;

    let series: usize = ev.batches.iter().map(|b| b.series.len()).sum();
    let points: usize = ev.detection.evaluated.iter().map(|e| e.points).sum();
    let mut by_check: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *by_check.entry(f.check.as_str()).or_default() += 1;
    }
    let checks = if by_check.is_empty() {
        "none".to_string()
    } else {
        by_check
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "backfill: {} source(s), {series} series, {} rows, {points} points evaluated, {} finding(s) ({checks}); {} dropped by FDR; load {:.2}s, detect {:.2}s",
        ev.batches.len(),
        ev.rows,
        findings.len(),
        ev.detection.dropped_by_fdr,
        ev.load_time.as_secs_f64(),
        ev.detect_time.as_secs_f64(),
    );
    Ok(ev)
}

fn write_findings(
    path: Option<&Path>,
    findings: &[crate::model::Finding],
    keys: &[String],
) -> anyhow::Result<()> {
    match path {
        None => output::write_csv(std::io::stdout().lock(), findings, keys)
            .context("writing findings to stdout"),
        Some(p) if p.as_os_str() == "-" => {
            output::write_csv(std::io::stdout().lock(), findings, keys)
                .context("writing findings to stdout")
        }
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create findings file `{}`", p.display()))?;
            let w = std::io::BufWriter::new(f);
            if p.extension().is_some_and(|e| e == "jsonl") {
                output::write_jsonl(w, findings, keys)
            } else {
                output::write_csv(w, findings, keys)
            }
            .with_context(|| format!("writing findings file `{}`", p.display()))
        }
    }
}
