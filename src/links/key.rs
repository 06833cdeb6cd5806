//! Where the link-signing key comes from: the operator's secret file or
//! environment variable, or a random key generated once beside the store.
//!
//! A generated key is 32 random bytes written as 64 hex characters to a file
//! created with mode 0600; it is created atomically (written under a temporary
//! name, then hard-linked into place), so `callout run` and `callout serve`
//! starting together agree on one key. Rotating = replacing the file or secret
//! and restarting: every link signed with the old key then answers 403.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::tokens::{Key, KeyTooShort};
use crate::config::{KeySource, Secret};

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `secret_env` names a variable that is not set.
    #[error("[web] secret_env: environment variable `{0}` is not set")]
    EnvUnset(String),
    /// A key file could not be read or written.
    #[error("[web] link-signing key `{path}`: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret is too short.
    #[error("[web] {origin}: {source}")]
    Short {
        /// Where it came from (`secret_env = "X"`, a path).
        origin: String,
        /// The length problem.
        source: KeyTooShort,
    },
}

/// The key from `source`; a generated key is created on first use.
pub fn load(source: &KeySource) -> Result<Key, KeyError> {
    let (bytes, origin) = match source {
        KeySource::Secret(Secret::Env(var)) => (
            std::env::var(var)
                .map_err(|_| KeyError::EnvUnset(var.clone()))?
                .into_bytes(),
            format!("secret_env = {var:?}"),
        ),
        KeySource::Secret(Secret::File(path)) => {
            (read(path)?, format!("secret_file `{}`", path.display()))
        }
        KeySource::Generated(path) => (
            generated(path)?,
            format!("generated key `{}`", path.display()),
        ),
    };
    let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    Key::new(&trimmed).map_err(|source| KeyError::Short { origin, source })
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read the key at `path`, creating it (mode 0600) if absent.
fn generated(path: &Path) -> Result<Vec<u8>, KeyError> {
    if path.exists() {
        return read(path);
    }
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let written = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{hex}\n").as_bytes()).and(f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    // A hard link fails if the name exists: whoever links first wins, the
    // other reads the winner's key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new link-signing key");
            Ok(format!("{hex}\n").into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::tokens::{self, Claims, Scope};

    fn token(k: &Key) -> String {
        tokens::sign(
            k,
            &Claims {
                scope: Scope::OpenItems,
                owner: "o".into(),
                expires_at: 10,
            },
        )
    }

    #[test]
    fn a_generated_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("callout-web.key");
        let a = load(&KeySource::Generated(p.clone())).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.trim().len(), 64, "32 bytes as hex");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = load(&KeySource::Generated(p.clone())).unwrap();
        assert_eq!(token(&a), token(&b), "the same key is reused");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        let other = load(&KeySource::Generated(dir.path().join("k2"))).unwrap();
        assert_ne!(token(&a), token(&other), "keys are random");
    }

    #[test]
    fn secret_file_is_trimmed_and_short_or_missing_secrets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.key");
        std::fs::write(&p, "  0123456789abcdef0123  \n").unwrap();
        let a = load(&KeySource::Secret(Secret::File(p.clone()))).unwrap();
        assert_eq!(
            token(&a),
            token(&Key::new(b"0123456789abcdef0123").unwrap())
        );
        std::fs::write(&p, "short\n").unwrap();
        let e = load(&KeySource::Secret(Secret::File(p.clone()))).unwrap_err();
        assert!(
            e.to_string().contains("web.key") && e.to_string().contains("5 bytes"),
            "{e}"
        );
        let e = load(&KeySource::Secret(Secret::File(dir.path().join("nope")))).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = load(&KeySource::Secret(Secret::Env(
            "CALLOUT_TEST_UNSET_WEB_KEY".into(),
        )))
        .unwrap_err();
        assert!(e.to_string().contains("CALLOUT_TEST_UNSET_WEB_KEY"), "{e}");
    }
}
