//! `[owners]`: who is asked about which series.

use super::*;

impl Compiler {
    pub(super) fn owners(&mut self, raw: Option<raw::RawOwners>) -> OwnersConfig {
        let Some(raw) = raw else {
            return OwnersConfig {
                rules: Vec::new(),
                default: None,
            };
        };
        let default = raw
            .default
            .as_deref()
            .and_then(|d| self.mailbox("owners.default", d));
        let mut rules = Vec::new();
        for (i, r) in raw.rule.into_iter().enumerate() {
            let pattern = self.glob(&format!("owners.rule[{i}].match"), r.pattern.as_deref());
            let Some(email) = r.email.as_deref() else {
                self.problem(
                    &format!("owners.rule[{i}].email"),
                    "missing: the owner's address".into(),
                );
                continue;
            };
            let escalate_to = r
                .escalate_to
                .as_deref()
                .and_then(|e| self.mailbox(&format!("owners.rule[{i}].escalate_to"), e));
            if let Some(email) = self.mailbox(&format!("owners.rule[{i}].email"), email) {
                let dims = self.dims(r.dims);
                rules.push(OwnerRule {
                    pattern,
                    dims,
                    email,
                    escalate_to,
                });
            }
        }
        OwnersConfig { rules, default }
    }
}
