//! `[detection]`: the defaults of detection and its memory budget.

use super::*;

impl Compiler {
    pub(super) fn detection(&mut self, raw: Option<raw::RawDetection>) -> DetectionConfig {
        let raw = raw.unwrap_or_default();
        DetectionConfig {
            fdr: self
                .float("detection.fdr", raw.fdr, FDR)
                .unwrap_or(raw::DEFAULT_FDR),
            default_calendar: raw.calendar.unwrap_or_else(|| raw::DEFAULT_CALENDAR.into()),
            memory_budget: raw
                .memory_budget
                .and_then(|b| self.bytes("detection.memory_budget", &b, MEMORY_BUDGET)),
        }
    }
}
