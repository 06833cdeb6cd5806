//! The one error type of a source ([`SourceError`]) and the helpers that word
//! its common cases. Every reader in `source` returns it; it names the source,
//! the file (or URL, object, query) and the column or series.

use std::time::Duration;

use crate::config::SourceConfig;

/// What [`SourceError::MissingColumn`] says after the source's name (also
/// `check-config`'s words, from the header alone: [`header`]).
pub(super) fn missing_column(file: &str, column: &str, role: &str, available: &str) -> String {
    format!("`{file}` has no column `{column}` (configured as {role}); columns are: {available}")
}

/// A problem with one source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No file matched the path or glob.
    #[error("source `{source_name}`: no file matches `{pattern}`")]
    NoFiles {
        /// Source name.
        source_name: String,
        /// Path or glob.
        pattern: String,
    },
    /// A file or URL could not be read or parsed.
    #[error("source `{source_name}`: cannot read `{file}`: {message}")]
    Read {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A configured column is absent.
    #[error(
        "source `{source_name}`: {}",
        missing_column(file, column, role, available)
    )]
    MissingColumn {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// The missing column.
        column: String,
        /// Which config key names it.
        role: &'static str,
        /// Columns the file does have.
        available: String,
    },
    /// The export has no rows.
    #[error("source `{source_name}`: `{file}` is empty (no data rows)")]
    Empty {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
    },
    /// A column holds values of the wrong kind.
    #[error("source `{source_name}`: `{file}` column `{column}`: {message}")]
    BadColumn {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// The column.
        column: String,
        /// What is wrong, with the first bad value.
        message: String,
    },
    /// A problem confined to one series (that series is skipped).
    #[error("source `{source_name}`: series `{series}`: {message}")]
    Series {
        /// Source name.
        source_name: String,
        /// The series, e.g. `orders{region=eu}`.
        series: String,
        /// What is wrong.
        message: String,
    },
    /// Some points of a series were unusable (NaN, infinite) and are treated as
    /// missing; the series is still evaluated. A warning: it does not fail a run.
    #[error("source `{source_name}`: series `{series}`: {message}")]
    BadValues {
        /// Source name.
        source_name: String,
        /// The series, e.g. `orders{region=eu}`.
        series: String,
        /// What was dropped.
        message: String,
    },
    /// A wide export's metric column without a single value: it gives no
    /// series. A warning: the other columns are used.
    #[error("source `{source_name}`: `{file}` column `{column}` has no values; no series")]
    EmptyColumn {
        /// Source name.
        source_name: String,
        /// The (first) file with the column.
        file: String,
        /// The column.
        column: String,
    },
    /// A URL did not answer in full within the source's `timeout_secs`.
    #[error(
        "source `{source_name}`: `{url}` did not deliver the export within {} s; raise `timeout_secs` for this source if the server is slow",
        timeout.as_secs()
    )]
    Timeout {
        /// Source name.
        source_name: String,
        /// The URL.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// A URL's response is larger than the source's `max_download_bytes`.
    #[error(
        "source `{source_name}`: `{url}` is larger than {limit} bytes; raise `max_download_bytes` for this source if the export really is that big"
    )]
    TooLarge {
        /// Source name.
        source_name: String,
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
}

impl SourceError {
    /// The source it is about.
    pub fn source_name(&self) -> &str {
        match self {
            SourceError::NoFiles { source_name, .. }
            | SourceError::Read { source_name, .. }
            | SourceError::MissingColumn { source_name, .. }
            | SourceError::Empty { source_name, .. }
            | SourceError::BadColumn { source_name, .. }
            | SourceError::Series { source_name, .. }
            | SourceError::BadValues { source_name, .. }
            | SourceError::EmptyColumn { source_name, .. }
            | SourceError::Timeout { source_name, .. }
            | SourceError::TooLarge { source_name, .. } => source_name,
        }
    }

    /// True for a problem of the export itself (a file or URL missing,
    /// empty, unreadable or of the wrong shape), as opposed to one series'
    /// data: the source's owner is told, like a late export.
    pub const fn is_export_problem(&self) -> bool {
        !matches!(
            self,
            SourceError::Series { .. }
                | SourceError::BadValues { .. }
                | SourceError::EmptyColumn { .. }
        )
    }

    /// True for problems that leave the data usable (reported, but a run with
    /// only warnings still succeeds).
    pub const fn is_warning(&self) -> bool {
        matches!(
            self,
            SourceError::BadValues { .. } | SourceError::EmptyColumn { .. }
        )
    }
}

impl From<SourceError> for Vec<SourceError> {
    fn from(e: SourceError) -> Self {
        vec![e]
    }
}

/// A [`SourceError::Read`] of `file`, worded by the first line of `e`.
pub(super) fn read_err(cfg: &SourceConfig, file: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        source_name: cfg.name.clone(),
        file: file.to_string(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}
