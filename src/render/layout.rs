//! The HTML every message shares, as maud templates: the page around a
//! message's body and the "Explain this" button. Styles are inline because
//! mail clients drop `<style>` elements.
//!
//! Must not: build HTML from strings; maud escapes every value it is given,
//! which is what keeps names, metrics and URLs from becoming markup.

use maud::{DOCTYPE, Markup, html};

/// The body style of every message.
const BODY_STYLE: &str = "font-family: sans-serif; line-height: 1.4";

/// The look of the "Explain this" link: a button, as far as mail clients allow.
const BUTTON_STYLE: &str = "display: inline-block; padding: 6px 14px; background: #1a56db; color: #ffffff; text-decoration: none; border-radius: 4px; font-weight: bold";

/// A whole message as an HTML document: `title` (the subject) in its head,
/// `body` in its body.
pub(super) fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { (title) }
            }
            body style=(BODY_STYLE) { (body) }
        }
    }
    .into_string()
}

/// The button-like "Explain this" link of one item.
pub(super) fn explain_button(url: &str) -> Markup {
    html! {
        p { a href=(url) style=(BUTTON_STYLE) { "Explain this" } }
    }
}
