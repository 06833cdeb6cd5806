//! The test email (`callout test-email`): a short message that proves the
//! SMTP settings work, as plain text and HTML.

use lettre::message::Mailbox;
use maud::{DOCTYPE, html};

use super::Digest;

/// The test message saying callout can send through `host:port` as `from`.
pub fn test_email(host: &str, port: u16, from: &Mailbox) -> Digest {
    let through =
        format!("If you can read it, callout can send digests through {host}:{port} as {from}.");
    let html = html! {
        (DOCTYPE)
        html {
            body {
                p { "This is a test email from callout." }
                p { (through) }
            }
        }
    };
    Digest {
        subject: "[callout] test email".to_string(),
        text: format!("This is a test email from callout.\n\n{through}\n"),
        html: html.into_string(),
        images: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_email_names_the_server_and_escapes_the_sender() {
        let from: Mailbox = "callout <callout@example.com>".parse().unwrap();
        let d = test_email("smtp.example.com", 587, &from);
        assert_eq!(
            d.text,
            format!(
                "This is a test email from callout.\n\nIf you can read it, callout can send digests through smtp.example.com:587 as {from}.\n"
            )
        );
        assert!(
            d.html.contains("as callout &lt;callout@example.com&gt;."),
            "{}",
            d.html
        );
        insta::assert_snapshot!(d.html);
    }
}
