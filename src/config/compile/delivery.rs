//! `[smtp]`, `[alerts]` and `[reminders]`: how messages go out, and when
//! they are retried and repeated.

use super::*;

impl Compiler {
    pub(super) fn smtp(&mut self, s: raw::RawSmtp) -> Option<SmtpConfig> {
        if s.password.is_some() {
            self.problem(
                "smtp.password",
                "passwords are never read inline; use password_env = \"VAR\" or password_file = \"path\"".into(),
            );
        }
        let password = match (s.password_env, s.password_file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "smtp.password_env",
                    "give password_env or password_file, not both".into(),
                );
                None
            }
            (Some(e), None) => Some(Secret::Env(e)),
            (None, Some(f)) => Some(Secret::File(self.path(&f))),
            (None, None) => None,
        };
        let security = self.choice(
            "smtp.security",
            s.security.as_deref(),
            &[
                ("starttls", Security::StartTls),
                ("tls", Security::Tls),
                ("none", Security::None),
            ],
            Security::StartTls,
        );
        let port = self
            .int("smtp.port", s.port, PORT)
            .and_then(|p| u16::try_from(p).ok());
        let timeout = self.secs(
            "smtp.timeout_secs",
            s.timeout_secs,
            SMTP_TIMEOUT_SECS,
            raw::DEFAULT_SMTP_TIMEOUT_SECS,
        );
        let Some(host) = s.host else {
            self.problem("smtp.host", "missing: the SMTP server's host name".into());
            return None;
        };
        let Some(from) = s.from else {
            self.problem(
                "smtp.from",
                "missing: the sender, e.g. \"callout <callout@example.com>\"".into(),
            );
            return None;
        };
        let from = self.mailbox("smtp.from", &from)?;
        let reply_to = s
            .reply_to
            .as_deref()
            .and_then(|r| self.mailbox("smtp.reply_to", r));
        let port = port.unwrap_or(match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Some(SmtpConfig {
            host,
            port,
            security,
            username: s.username,
            password,
            from,
            reply_to,
            list_id: s.list_id,
            timeout,
            ca: s.ca_file.and_then(|f| self.ca_file(&f)),
        })
    }

    /// Read `smtp.ca_file` now, so a missing, empty or broken file is a config
    /// problem (named, with the fix) rather than a TLS failure at send time.
    pub(super) fn ca_file(&mut self, file: &str) -> Option<CaFile> {
        use lettre::transport::smtp::client::{Certificate, TlsParameters};
        let path = self.path(file);
        let shown = path.display().to_string();
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) => {
                self.problem(
                    "smtp.ca_file",
                    format!("cannot read the CA certificate file `{shown}`: {e}"),
                );
                return None;
            }
        };
        // lettre accepts a PEM file without certificates (it skips keys and
        // other blocks), which would silently trust nothing extra.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            self.problem(
                "smtp.ca_file",
                format!(
                    "`{shown}` holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block); give the certificate of the CA that signed the SMTP server's certificate"
                ),
            );
            return None;
        }
        // Building TLS parameters parses each certificate as a trust anchor.
        let checked = Certificate::from_pem(&pem).and_then(|c| {
            TlsParameters::builder("localhost".into())
                .add_root_certificate(c.clone())
                .build_rustls()
                .map(|_| c)
        });
        match checked {
            Ok(certificate) => Some(CaFile { path, certificate }),
            Err(e) => {
                self.problem(
                    "smtp.ca_file",
                    format!("`{shown}` is not a valid PEM CA certificate: {e}"),
                );
                None
            }
        }
    }

    pub(super) fn alerts(&mut self, raw: Option<raw::RawAlerts>) -> AlertsConfig {
        let raw = raw.unwrap_or_default();
        let close_after_periods = self
            .int(
                "alerts.close_after_periods",
                raw.close_after_periods,
                CLOSE_AFTER_PERIODS,
            )
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(raw::DEFAULT_CLOSE_AFTER_PERIODS);
        let close_after_hours = self
            .int(
                "alerts.close_after_hours",
                raw.close_after_hours,
                CLOSE_AFTER_HOURS,
            )
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(raw::DEFAULT_CLOSE_AFTER_HOURS);
        let retry_base = self.secs(
            "alerts.retry_base_secs",
            raw.retry_base_secs,
            RETRY_BASE_SECS,
            raw::DEFAULT_RETRY_BASE_SECS,
        );
        let catch_up_days = self
            .int("alerts.catch_up_days", raw.catch_up_days, CATCH_UP_DAYS)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(raw::DEFAULT_CATCH_UP_DAYS);
        AlertsConfig {
            close_after_periods,
            close_after_hours,
            retry_base,
            catch_up_days,
        }
    }

    pub(super) fn reminders(&mut self, raw: Option<raw::RawReminders>) -> RemindersConfig {
        let Some(raw) = raw else {
            return RemindersConfig::default();
        };
        let hours = self
            .int(
                "reminders.hours_before_deadline",
                raw.hours_before_deadline,
                REMINDER_HOURS,
            )
            .unwrap_or(raw::DEFAULT_REMINDER_HOURS);
        let before_deadline = (hours > 0).then(|| chrono::Duration::hours(hours));
        let escalate_to = raw
            .escalate_to
            .as_deref()
            .and_then(|e| self.mailbox("reminders.escalate_to", e));
        RemindersConfig {
            before_deadline,
            escalate_to,
        }
    }
}
