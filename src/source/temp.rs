//! A private temp file that leaves nothing behind: a URL's download, or the
//! UTF-8 copy of a CSV in another encoding.

use std::path::PathBuf;

/// A private temp file, read by its `path` while it is held: a URL's
/// download, or the UTF-8 copy of a CSV in another encoding.
///
/// On Linux the file has no name at all (`O_TMPFILE`, or unlinked at once)
/// and is read through `/proc/self/fd`: nothing is left in the temp folder
/// however the process ends (SIGTERM kills `run --once`, `backfill` and
/// `check-sources`; the daemon may leave a run it gave up on). Elsewhere it
/// is a named temp file, removed when dropped.
#[derive(Debug)]
pub(super) struct TempFile {
    /// Holds the file open (on Linux, alive).
    pub(super) file: std::fs::File,
    /// Where Polars reads it.
    pub(super) path: PathBuf,
    /// A named file's name, removed on drop.
    _named: Option<tempfile::TempPath>,
}

impl TempFile {
    /// A new, empty one (`suffix`: the format's extension,
    /// for a named one).
    pub(super) fn new(suffix: &str) -> std::io::Result<TempFile> {
        #[cfg(target_os = "linux")]
        {
            let _ = suffix;
            let file = tempfile::tempfile()?;
            let path = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&file)
            ));
            Ok(TempFile {
                file,
                path,
                _named: None,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (file, named) = tempfile::Builder::new()
                .prefix("callout-")
                .suffix(suffix)
                .tempfile()?
                .into_parts();
            Ok(TempFile {
                file,
                path: named.to_path_buf(),
                _named: Some(named),
            })
        }
    }
}
