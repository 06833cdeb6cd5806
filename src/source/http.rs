//! URL sources: one download into a private temp file ([`TempFile`]), within
//! the source's timeout and size limit, with messages that say what would be
//! right (a server that does not speak TLS, a body too large).

use super::SourceError;
use super::error::read_err;
use super::temp::TempFile;
use crate::config::{Format, SourceConfig};

/// True for a failure of an `https://` request that plain HTTP on the port
/// gives: the server hangs up on the TLS hello, or answers it in text
/// ("400 Bad Request"), which TLS reads as a corrupt message.
fn no_tls(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e, ureq::Error::Io(io) if matches!(
        io.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::InvalidData
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
    ))
}

/// Download a URL into a private temp file (Polars scans files, see
/// [`TempFile`]): created afresh (never an existing path or symlink),
/// streamed to disk, at most `max_download_bytes`, within `timeout_secs`.
pub(super) fn download(cfg: &SourceConfig, url: &str) -> Result<TempFile, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .build()
        .into();
    let timed_out = || SourceError::Timeout {
        source_name: cfg.name.clone(),
        url: url.to_string(),
        timeout: cfg.timeout,
    };
    let too_large = || SourceError::TooLarge {
        source_name: cfg.name.clone(),
        url: url.to_string(),
        limit: cfg.max_download_bytes,
    };
    let mut resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(_) => timed_out(),
        e => match url.strip_prefix("https://") {
            Some(rest) if no_tls(&e) => read_err(
                cfg,
                url,
                format!(
                    "{e}: it looks like the server does not speak TLS on this port; if it serves plain HTTP, write the URL as `http://{rest}`"
                ),
            ),
            _ => read_err(cfg, url, e),
        },
    })?;
    if resp
        .body()
        .content_length()
        .is_some_and(|n| n > cfg.max_download_bytes)
    {
        return Err(too_large());
    }
    let suffix = match cfg.format {
        Format::Csv => ".csv",
        Format::Parquet => ".parquet",
        Format::Ndjson => ".ndjson",
        // a workbook's kind is read from its content (`workbook::open`)
        Format::Workbook => ".xlsx",
    };
    let mut tmp = TempFile::new(suffix)
        .map_err(|e| read_err(cfg, url, format!("cannot create a temp file: {e}")))?;
    let body = resp.body_mut().as_reader();
    // one byte more than allowed tells "exactly the limit" from "too large"
    let mut limited = std::io::Read::take(body, cfg.max_download_bytes.saturating_add(1));
    let copied = std::io::copy(&mut limited, &mut tmp.file).map_err(|e| {
        let timeout = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
        if timeout || e.kind() == std::io::ErrorKind::TimedOut {
            timed_out()
        } else {
            read_err(cfg, url, e)
        }
    })?;
    if copied > cfg.max_download_bytes {
        return Err(too_large());
    }
    if copied == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: url.to_string(),
        });
    }
    Ok(tmp)
}
