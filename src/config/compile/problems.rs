//! Error collection and key paths: every problem is kept with its key
//! (`metric[3].sensitivity`), the first problem of a key wins, and a document
//! that serde rejects is taken apart so that *every* type error and unknown key
//! is reported, not just the first.

use serde::de::DeserializeOwned;

use super::*;

impl Compiler {
    pub(super) fn problem(&mut self, key: &str, message: String) {
        // A value dropped for its type would be reported again as missing:
        // the first problem of a key is the one that says what is wrong.
        if key != "(file)"
            && !key.starts_with("line ")
            && self.problems.iter().any(|p| p.key == key)
        {
            return;
        }
        self.problems.push(ConfigProblem {
            key: key.to_string(),
            message,
        });
    }

    pub(super) fn fail(&mut self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: std::mem::take(&mut self.problems),
        }
    }

    /// Deserialize the whole document, reporting *every* type error and unknown key.
    ///
    /// serde stops at the first error, so on failure each part is tried alone
    /// (placed back where it was, everything else left out): the parts that fail
    /// on their own are reported with their key path and dropped, and the rest is
    /// deserialized again so that the semantic checks still run on it.
    pub(super) fn deserialize<T: DeserializeOwned>(&mut self, v: toml::Value) -> Option<T> {
        let root: Wrap<'_> = &|x| x;
        let v = if fits::<T>(root, v.clone()).is_ok() {
            v
        } else {
            self.prune::<T>("", v, root)?
        };
        let mut unknown = Vec::new();
        let raw = match serde_ignored::deserialize(v, |p| {
            unknown.push((fix_path(&p.to_string()), table_keys(&p)));
        }) {
            Ok(r) => Some(r),
            Err(e) => {
                self.problem("(file)", one_line(e.message()));
                None
            }
        };
        for (k, mut keys) in unknown {
            let message = match REMOVED_KEYS.iter().find(|(removed, _)| *removed == k) {
                Some((_, m)) => m.to_string(),
                None => {
                    let typed = keys.pop().unwrap_or_default();
                    match fields::suggestion(&typed, fields::keys_at::<T>(&keys)) {
                        Some(meant) => format!("unknown key; did you mean `{meant}`?"),
                        None => "unknown key".to_string(),
                    }
                }
            };
            self.problem(&k, message);
        }
        raw
    }

    /// `v` (at `path`, placed by `wrap`) does not fit `T`: report the smallest
    /// parts that do not, and return `v` without them (`None`: drop `v` itself).
    pub(super) fn prune<T: DeserializeOwned>(
        &mut self,
        path: &str,
        v: toml::Value,
        wrap: Wrap<'_>,
    ) -> Option<toml::Value> {
        let empty_table = || toml::Value::Table(toml::Table::new());
        match v {
            // An empty container that fits means the container's type is right
            // and the fault is inside it.
            toml::Value::Table(t) if fits::<T>(wrap, empty_table()).is_ok() => {
                let mut kept = toml::Table::new();
                for (k, x) in t {
                    let inner = |y| {
                        let mut one = toml::Table::new();
                        one.insert(k.clone(), y);
                        wrap(toml::Value::Table(one))
                    };
                    let x = if fits::<T>(&inner, x.clone()).is_ok() {
                        Some(x)
                    } else {
                        self.prune::<T>(&key_path(path, &k), x, &inner)
                    };
                    if let Some(x) = x {
                        kept.insert(k, x);
                    }
                }
                Some(toml::Value::Table(kept))
            }
            toml::Value::Array(a) if fits::<T>(wrap, toml::Value::Array(Vec::new())).is_ok() => {
                let mut kept = Vec::new();
                for (i, x) in a.into_iter().enumerate() {
                    let inner = |y| wrap(toml::Value::Array(vec![y]));
                    let x = if fits::<T>(&inner, x.clone()).is_ok() {
                        Some(x)
                    } else {
                        self.prune::<T>(&format!("{path}[{i}]"), x, &inner)
                    };
                    kept.extend(x);
                }
                Some(toml::Value::Array(kept))
            }
            v => {
                let message = fits::<T>(wrap, v).err().unwrap_or_default();
                self.problem(if path.is_empty() { "(file)" } else { path }, message);
                None
            }
        }
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// serde_ignored writes `metric.3.sensitivty` and `detection.?.fdrr` (the `?` is
/// an `Option`); show them as `metric[3].sensitivty` and `detection.fdrr`.
pub(super) fn fix_path(p: &str) -> String {
    let mut out = String::new();
    for part in p.split('.').filter(|part| *part != "?") {
        if part.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The table keys of a path serde_ignored reports, outermost first (array
/// indices and options left out): `metric.3.bounds.lowr` → metric, bounds, lowr.
pub(super) fn table_keys(p: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    match p {
        Path::Root => Vec::new(),
        Path::Map { parent, key } => {
            let mut keys = table_keys(parent);
            keys.push(key.clone());
            keys
        }
        Path::Seq { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => table_keys(parent),
    }
}

/// Keys that were removed, with what to do instead (shown in place of "unknown key").
pub(super) const REMOVED_KEYS: &[(&str, &str)] = &[(
    "alerts.max_attempts_per_run",
    "unknown key (removed: every run retries each due digest once, with backoff from alerts.retry_base_secs)",
)];

/// Wraps a value back into its place in the document, so a part can be tried alone.
pub(super) type Wrap<'a> = &'a dyn Fn(toml::Value) -> toml::Value;

/// `Ok` when `v`, placed by `wrap`, deserializes as `T`; else serde's message.
pub(super) fn fits<T: DeserializeOwned>(wrap: Wrap<'_>, v: toml::Value) -> Result<(), String> {
    T::deserialize(wrap(v))
        .map(|_| ())
        .map_err(|e| one_line(e.message()))
}

pub(super) fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}
