//! The HTTP routes: signed-link pages, the explanation form, `/healthz`, `/metrics`.
//!
//! Every page request verifies its token first: a bad signature is 403, an
//! expired link 410 (with a page saying what to do), an unknown incident 404,
//! an incident the token does not cover 403. Store work runs on blocking
//! threads; each request opens the store (SQLite in WAL mode, so the daemon's
//! writes and these reads do not block each other).
//!
//! Links: `/e/{token}` is a one-incident page (its token names one incident)
//! or the owner's list (all open items, or several incidents), and
//! `/e/{token}/{id}` is one incident reached from a list; `/report/{token}`
//! is the week's pre-read (a report token opens nothing else, and no other
//! token opens a report). Pages link with
//! relative URLs so they work behind a reverse proxy under any path prefix.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::pages::{self, FormValues, IncidentView, ListItem, MAX_TEXT_CHARS, Notice};
use super::{AppState, ops};
use crate::links::tokens::{self, Claims, Scope, TokenError};
use crate::model::{Cause, Persistence};
use crate::store::explanations::{Added, NewExplanation};
use crate::store::{IncidentRow, RunKind, Store, StoreError};

/// Why a request was refused; each becomes a page with its status.
#[derive(Debug)]
pub enum PageError {
    /// 403: the token is not valid, or does not cover the incident.
    Forbidden,
    /// 410: the token was valid until its expiry.
    Expired(Claims),
    /// 404: no such incident.
    NotFound,
    /// 500: the store failed (logged, never shown).
    Store(StoreError),
    /// 500: a blocking task failed.
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl From<TokenError> for PageError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => PageError::Forbidden,
            TokenError::Expired(c) => PageError::Expired(c),
        }
    }
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Forbidden => html(
                StatusCode::FORBIDDEN,
                pages::message_page(
                    "This link does not work",
                    &[
                        "The link is incomplete or was changed, or it is for another item.",
                        "Open it again from the email callout sent you, and copy the whole address.",
                    ],
                ),
            ),
            PageError::Expired(c) => {
                let when = DateTime::from_timestamp(c.expires_at, 0)
                    .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                let line = format!("This link stopped working on {when}.");
                html(
                    StatusCode::GONE,
                    pages::message_page(
                        "This link has expired",
                        &[
                            &line,
                            "Links in callout's emails work for a while after the review they were sent for. The next digest or reminder about an item that still needs an explanation has a fresh link.",
                        ],
                    ),
                )
            }
            PageError::NotFound => html(
                StatusCode::NOT_FOUND,
                pages::message_page(
                    "Item not found",
                    &[
                        "callout has no record of this item. It may have been recorded in a store that has since been replaced.",
                    ],
                ),
            ),
            PageError::Store(e) => {
                tracing::error!("web page: {e}");
                internal()
            }
            PageError::Internal(e) => {
                tracing::error!("web page: {e}");
                internal()
            }
        }
    }
}

fn internal() -> Response {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message_page(
            "Something went wrong",
            &[
                "callout could not read its records just now. Try again in a minute; if it keeps failing, tell whoever runs callout.",
            ],
        ),
    )
}

/// Run store work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PageError::Internal(format!("blocking task failed: {e}")))?
}

fn verify(state: &AppState, token: &str) -> Result<Claims, PageError> {
    Ok(tokens::verify(
        &state.key,
        token,
        state.clock.now().timestamp(),
    )?)
}

/// Does `claims` cover `incident`?
fn covers(claims: &Claims, incident: &IncidentRow) -> bool {
    match &claims.scope {
        Scope::Incidents(ids) => ids.contains(&incident.id),
        // both texts are a mailbox's `to_string` (the store's and the link's)
        Scope::OpenItems => incident
            .owner
            .as_ref()
            .is_some_and(|o| o.to_string() == claims.owner),
        Scope::Report { .. } | Scope::Chart(_) => false,
    }
}

fn deadline(state: &AppState, now: DateTime<Utc>) -> String {
    crate::fmt::short_time(&crate::review::deadline(&state.config.review, now))
}

/// Load everything the page of `id` shows, checking the token covers it.
fn load_view(
    state: &AppState,
    claims: &Claims,
    id: i64,
    list_href: Option<String>,
) -> Result<IncidentView, PageError> {
    let store = Store::open(&state.config.store_path)?;
    let incident = store.incident(id)?.ok_or(PageError::NotFound)?;
    if !covers(claims, &incident) {
        return Err(PageError::Forbidden);
    }
    let findings = store.findings_of_incident(id)?;
    let history = store.history(&incident.source, &incident.key)?;
    let explanations = store.explanation_history(id)?;
    let earlier = store
        .explanations_for_series(&incident.source, &incident.key)?
        .into_iter()
        .filter(|e| e.incident_id != id)
        .collect();
    let now = state.clock.now();
    let unit = state
        .config
        .report
        .metric(&incident.key.metric)
        .unit
        .clone();
    Ok(IncidentView {
        deadline: Some(deadline(state, now)),
        incident,
        findings,
        history,
        explanations,
        earlier,
        review_name: state.config.review.name.clone(),
        list_href,
        unit,
    })
}

/// The single incident a token names, if it names exactly one.
fn single(claims: &Claims) -> Option<i64> {
    match &claims.scope {
        Scope::Incidents(ids) if ids.len() == 1 => ids.first().copied(),
        _ => None,
    }
}

/// `GET /e/{token}`.
pub async fn link(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    if matches!(claims.scope, Scope::Report { .. } | Scope::Chart(_)) {
        return Err(PageError::Forbidden);
    }
    if let Some(id) = single(&claims) {
        let view = blocking(move || load_view(&state, &claims, id, None)).await?;
        return Ok(html(
            StatusCode::OK,
            pages::incident_page(&view, &FormValues::default(), &Notice::None),
        ));
    }
    let page = blocking(move || {
        let store = Store::open(&state.config.store_path)?;
        let incidents = match &claims.scope {
            Scope::Incidents(ids) => {
                let mut v = Vec::new();
                for id in ids {
                    if let Some(i) = store.incident(*id)? {
                        v.push(i);
                    }
                }
                v
            }
            Scope::OpenItems => store.open_items_of(&claims.owner)?,
            Scope::Report { .. } | Scope::Chart(_) => Vec::new(),
        };
        let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
        let explained = store.explained_incidents(&ids)?;
        let mut items = Vec::new();
        for i in incidents {
            let finding = store
                .findings_of_incident(i.id)?
                .into_iter()
                .filter(|f| f.hit.check == i.worst_check)
                .max_by(|a, b| a.hit.score.abs().total_cmp(&b.hit.score.abs()));
            items.push(ListItem {
                explained: explained.contains(&i.id),
                // relative to /e/{token}: /e/{token}/{id}
                href: format!("{token}/{}", i.id),
                incident: i,
                finding,
            });
        }
        let d = deadline(&state, state.clock.now());
        Ok(pages::list_page(
            &claims.owner,
            &state.config.review.name,
            Some(&d),
            &items,
        ))
    })
    .await?;
    Ok(html(StatusCode::OK, page))
}

/// `GET /e/{token}/{id}`.
pub async fn item(
    State(state): State<Arc<AppState>>,
    Path((token, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    // relative to /e/{token}/{id}: back to /e/{token}
    let back = (single(&claims).is_none()).then(|| format!("../{token}"));
    let view = blocking(move || load_view(&state, &claims, id, back)).await?;
    Ok(html(
        StatusCode::OK,
        pages::incident_page(&view, &FormValues::default(), &Notice::None),
    ))
}

/// `GET /report/{token}`: the pre-read of the token's week, as `callout report` writes it.
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    let Scope::Report {
        week_start,
        review_at,
    } = claims.scope
    else {
        return Err(PageError::Forbidden);
    };
    let page = blocking(move || super::report::page(&state, week_start, review_at)).await?;
    Ok((StatusCode::OK, Html(page)).into_response())
}

/// The explanation form as posted; every field optional so that a missing one
/// is reported on the page, not as a bare 422.
#[derive(Debug, serde::Deserialize)]
pub struct RawForm {
    cause: Option<String>,
    persistence: Option<String>,
    text: Option<String>,
}

/// Check a posted form: the values to echo back and, if valid, nothing to report.
fn validate(f: RawForm) -> (FormValues, Vec<String>) {
    let mut problems = Vec::new();
    let cause = f.cause.as_deref().and_then(Cause::parse);
    if cause.is_none() {
        problems.push("Choose what caused it.".to_string());
    }
    let persistence = match f.persistence.as_deref() {
        None | Some("") => None,
        Some(p) => {
            let parsed = Persistence::parse(p);
            if parsed.is_none() {
                problems.push("Choose whether the new level will last.".to_string());
            }
            parsed
        }
    };
    // Browsers send CRLF line ends; store LF, without surrounding blanks.
    let text = f
        .text
        .unwrap_or_default()
        .replace("\r\n", "\n")
        .trim()
        .to_string();
    let chars = text.chars().count();
    if chars == 0 {
        problems.push("Write what happened (a sentence is enough).".to_string());
    } else if chars > MAX_TEXT_CHARS {
        problems.push(format!(
            "Shorten the text to at most {MAX_TEXT_CHARS} characters (it has {chars})."
        ));
    }
    (
        FormValues {
            cause,
            persistence,
            text,
        },
        problems,
    )
}

async fn submit(
    state: Arc<AppState>,
    token: String,
    id: i64,
    back: Option<String>,
    form: RawForm,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    let (values, problems) = validate(form);
    blocking(move || {
        let view = load_view(&state, &claims, id, back.clone())?;
        if !problems.is_empty() {
            return Ok(html(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::incident_page(&view, &values, &Notice::Invalid(problems)),
            ));
        }
        let Some(cause) = values.cause else {
            return Err(PageError::Internal("validated form without a cause".into()));
        };
        let store = Store::open(&state.config.store_path)?;
        let added = store.add_explanation(&NewExplanation {
            incident_id: id,
            cause,
            persistence: values.persistence,
            text: values.text.clone(),
            author: claims.owner.clone(),
            link_hash: tokens::token_hash(&token),
            created_at: state.clock.now().timestamp_millis(),
        })?;
        let new = matches!(added, Added::New(_));
        tracing::info!(
            incident = id,
            new,
            cause = cause.as_str(),
            "explanation received"
        );
        let view = load_view(&state, &claims, id, back)?;
        // The form shows the stored answer, ready to be edited.
        Ok(html(
            StatusCode::OK,
            pages::incident_page(&view, &values, &Notice::Saved { new }),
        ))
    })
    .await
}

/// `POST /e/{token}` (a one-incident link).
pub async fn link_post(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Form(form): Form<RawForm>,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    let id = single(&claims).ok_or(PageError::Forbidden)?;
    submit(state, token, id, None, form).await
}

/// `POST /e/{token}/{id}`.
pub async fn item_post(
    State(state): State<Arc<AppState>>,
    Path((token, id)): Path<(String, i64)>,
    Form(form): Form<RawForm>,
) -> Result<Response, PageError> {
    let claims = verify(&state, &token)?;
    let back = (single(&claims).is_none()).then(|| format!("../{token}"));
    submit(state, token, id, back, form).await
}

/// `GET /chart/{token}.png`: the chart of the one incident a chart token
/// names (chat messages show it): the last six weeks, its flagged points and
/// normal ranges, as the digest's PNG. No other token opens it, and it opens
/// nothing else; 404 when there is nothing to draw.
pub async fn chart(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let token = file.strip_suffix(".png").ok_or(PageError::NotFound)?;
    let claims = verify(&state, token)?;
    let Scope::Chart(id) = claims.scope else {
        return Err(PageError::Forbidden);
    };
    let png = blocking(move || {
        let store = Store::open(&state.config.store_path)?;
        let incident = store.incident(id)?.ok_or(PageError::NotFound)?;
        let findings = store.findings_of_incident(id)?;
        let history = store
            .history(&incident.source, &incident.key)?
            .ok_or(PageError::NotFound)?;
        let (band, marks) = crate::render::chart::bands_and_marks(&findings);
        let title = format!("{}, last 6 weeks", incident.key.label());
        let unit = &state.config.report.metric(&incident.key.metric).unit;
        let x_format = if history.granularity.is_dated() {
            "%d %b"
        } else {
            "%d %b %H:%M"
        };
        crate::render::chart::png(&crate::render::chart::Chart {
            title: &title,
            points: &history.recent,
            band: &band,
            marks: &marks,
            x_format,
            unit,
        })
        .ok_or(PageError::NotFound)
    })
    .await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        png,
    )
        .into_response())
}

/// `GET /healthz`: 200 or 503 with a short JSON body.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let s = Arc::clone(&state);
    let latest =
        blocking(move || Ok(Store::open(&s.config.store_path)?.latest_run_times(RunKind::Run)?))
            .await;
    let h = match latest {
        Ok(latest) => ops::health(
            &state.config.schedule,
            latest,
            state.up_since,
            state.clock.now(),
        ),
        Err(e) => {
            let detail = match &e {
                PageError::Store(se) => format!("store: {se}"),
                other => format!("{other:?}"),
            };
            ops::Health {
                status: "unhealthy",
                detail,
                last_run_finished_at: None,
                next_run_due: None,
            }
        }
    };
    let code = if h.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&h).unwrap_or_else(|_| "{\"status\":\"unhealthy\"}".into());
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, PageError> {
    let stats = blocking(move || Ok(Store::open(&state.config.store_path)?.ops_stats()?)).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        ops::metrics_text(&stats),
    )
        .into_response())
}

/// Anything else: 404.
pub async fn not_found() -> Response {
    PageError::NotFound.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(cause: Option<&str>, persistence: Option<&str>, text: Option<&str>) -> RawForm {
        RawForm {
            cause: cause.map(Into::into),
            persistence: persistence.map(Into::into),
            text: text.map(Into::into),
        }
    }

    #[test]
    fn form_validation_names_every_problem() {
        let (v, p) = validate(form(
            Some("known_event"),
            Some(""),
            Some("  Promo\r\nday  "),
        ));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            v,
            FormValues {
                cause: Some(Cause::KnownEvent),
                persistence: None,
                text: "Promo\nday".into()
            }
        );
        let (_, p) = validate(form(None, Some("forever"), Some("   ")));
        assert_eq!(p.len(), 3, "{p:?}");
        let long = "é".repeat(MAX_TEXT_CHARS + 1);
        let (_, p) = validate(form(Some("data_issue"), Some("one_off"), Some(&long)));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("2001"), "{p:?}");
        let ok = "é".repeat(MAX_TEXT_CHARS);
        assert!(
            validate(form(Some("data_issue"), None, Some(&ok)))
                .1
                .is_empty(),
            "characters, not bytes"
        );
    }
}
