//! `[owners]` and `[[chat]]`: who is asked about which series, and where.

use super::*;

impl Compiler {
    /// `[owners]`, its rules' `chat` names checked against `chats`.
    pub(super) fn owners(
        &mut self,
        raw: Option<raw::RawOwners>,
        chats: &[ChatConfig],
    ) -> OwnersConfig {
        let Some(raw) = raw else {
            return OwnersConfig {
                rules: Vec::new(),
                default: None,
                default_chat: Vec::new(),
            };
        };
        let default = raw
            .default
            .as_deref()
            .and_then(|d| self.mailbox("owners.default", d));
        let default_chat = self.chat_names("owners.default_chat", raw.default_chat, chats);
        let mut rules = Vec::new();
        for (i, r) in raw.rule.into_iter().enumerate() {
            let pattern = self.glob(&format!("owners.rule[{i}].match"), r.pattern.as_deref());
            let chat = self.chat_names(&format!("owners.rule[{i}].chat"), r.chat, chats);
            if r.email.is_none() && chat.is_empty() {
                self.problem(
                    &format!("owners.rule[{i}].email"),
                    "missing: the owner's address (or `chat = \"<[[chat]] name>\"` to post to a channel instead)".into(),
                );
                continue;
            }
            let escalate_to = r
                .escalate_to
                .as_deref()
                .and_then(|e| self.mailbox(&format!("owners.rule[{i}].escalate_to"), e));
            let email = match r.email.as_deref() {
                Some(e) => match self.mailbox(&format!("owners.rule[{i}].email"), e) {
                    Some(m) => Some(m),
                    None => continue,
                },
                None => None,
            };
            let dims = self.dims(r.dims);
            rules.push(OwnerRule {
                pattern,
                dims,
                email,
                chat,
                escalate_to,
            });
        }
        OwnersConfig {
            rules,
            default,
            default_chat,
        }
    }

    /// `chat = "name"` or a list: each must be a `[[chat]]`'s name.
    pub(super) fn chat_names(
        &mut self,
        key: &str,
        v: Option<raw::OneOrMany>,
        chats: &[ChatConfig],
    ) -> Vec<String> {
        let names = v.map(raw::OneOrMany::into_vec).unwrap_or_default();
        let known: Vec<&str> = chats.iter().map(|c| c.name.as_str()).collect();
        let mut out: Vec<String> = Vec::new();
        for n in names {
            if !known.contains(&n.as_str()) {
                let hint = match super::super::fields::suggestion(&n, &known) {
                    Some(s) => format!("; did you mean {s:?}?"),
                    None if known.is_empty() => "; add a [[chat]] table with this name".into(),
                    None => format!(" (the [[chat]] names are {})", quoted(&known)),
                };
                self.problem(key, format!("no [[chat]] named {n:?}{hint}"));
            } else if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    /// `[[chat]]` tables: unique names, a kind, and where the webhook URL is.
    pub(super) fn chats(&mut self, raw: Vec<raw::RawChat>) -> Vec<ChatConfig> {
        let mut out: Vec<ChatConfig> = Vec::new();
        for (i, c) in raw.into_iter().enumerate() {
            let at = |k: &str| format!("chat[{i}].{k}");
            if c.webhook.is_some() {
                self.problem(
                    &at("webhook"),
                    "a webhook URL is a secret and is never read inline; use webhook_env = \"VAR\" or webhook_file = \"path\"".into(),
                );
            }
            let kind = match c.kind.as_deref() {
                None => {
                    self.problem(&at("kind"), "missing: \"slack\" or \"teams\"".into());
                    None
                }
                k => Some(self.choice(
                    &at("kind"),
                    k,
                    &[("slack", ChatKind::Slack), ("teams", ChatKind::Teams)],
                    ChatKind::Slack,
                )),
            };
            let webhook = match (c.webhook_env, c.webhook_file) {
                (Some(_), Some(_)) => {
                    self.problem(
                        &at("webhook_env"),
                        "give webhook_env or webhook_file, not both".into(),
                    );
                    None
                }
                (Some(e), None) => Some(Secret::Env(e)),
                (None, Some(f)) => Some(Secret::File(self.path(&f))),
                (None, None) => {
                    if c.webhook.is_none() {
                        self.problem(
                            &at("webhook_env"),
                            "missing: the environment variable (webhook_env) or file (webhook_file) holding the webhook URL".into(),
                        );
                    }
                    None
                }
            };
            let timeout = self.secs(
                &at("timeout_secs"),
                c.timeout_secs,
                CHAT_TIMEOUT_SECS,
                raw::DEFAULT_CHAT_TIMEOUT_SECS,
            );
            let name = match c.name {
                Some(n) if !n.trim().is_empty() => n,
                _ => {
                    self.problem(
                        &at("name"),
                        "missing: the name owner rules use (`chat = \"wbr\"`)".into(),
                    );
                    continue;
                }
            };
            if out.iter().any(|o| o.name == name) {
                self.problem(&at("name"), format!("duplicate [[chat]] name {name:?}"));
                continue;
            }
            if let (Some(kind), Some(webhook)) = (kind, webhook) {
                out.push(ChatConfig {
                    name,
                    kind,
                    webhook,
                    timeout,
                });
            }
        }
        out
    }
}

/// `"a", "b"` for a message.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
