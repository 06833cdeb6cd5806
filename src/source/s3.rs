//! S3 sources: objects in S3 or an S3-compatible store (MinIO, Ceph, R2),
//! `path = "s3://bucket/key"` where the key may be a glob.
//!
//! The objects are read by Polars' own cloud reader (object_store
//! underneath), so a Parquet scan fetches only the columns and row groups the
//! plan needs. This module owns what Polars does not: listing a glob's keys (each
//! object is its own unit, as a local glob's files are), the connection
//! options, and turning object-store errors into messages that name the
//! bucket or key and say what would be right. Credentials are never in the
//! config: object_store reads them the AWS way (`AWS_ACCESS_KEY_ID` …,
//! `~/.aws/credentials`, web identity, the container or instance role) and
//! they never appear in a message. The URL's form is checked once, by
//! `config::syntax`, when the config is compiled.

use std::time::Duration;

use polars::io::cloud::{AmazonS3ConfigKey, CloudOptions};
use polars::prelude::PlRefPath;

use super::SourceError;
use crate::config::S3Source;

/// True when the key is a glob over keys rather than one key.
pub fn is_glob(key: &str) -> bool {
    key.contains(['*', '?', '['])
}

/// The connection options Polars reads with: the source's endpoint, region
/// and addressing over what the environment and `~/.aws` give (Polars' AWS
/// builder starts from those), and `timeout` for each request (Polars sets
/// none, and a store that stops answering would hang the run). Holds no
/// credential of ours.
pub fn cloud_options(s3: &S3Source, timeout: Duration) -> CloudOptions {
    let mut config: Vec<(AmazonS3ConfigKey, String)> = Vec::new();
    let secs = format!("{}s", timeout.as_secs().max(1));
    for key in ["timeout", "connect_timeout"] {
        if let Ok(k) = key.parse::<AmazonS3ConfigKey>() {
            config.push((k, secs.clone()));
        }
    }
    if let Some(e) = &s3.endpoint_url {
        // AWS_ENDPOINT_URL_S3 in the environment would win over `Endpoint`:
        // the source's own setting must not
        config.push((AmazonS3ConfigKey::Endpoint, e.clone()));
        config.push((AmazonS3ConfigKey::S3Endpoint, e.clone()));
    }
    if let Some(r) = &s3.region {
        config.push((AmazonS3ConfigKey::Region, r.clone()));
    }
    if let Some(path_style) = s3.path_style {
        config.push((
            AmazonS3ConfigKey::VirtualHostedStyleRequest,
            (!path_style).to_string(),
        ));
    }
    CloudOptions::default().with_aws(config)
}

/// The objects of a source, as `s3://bucket/key` URLs in key order: the one
/// key, or the keys a glob matches (listed under the glob's literal prefix,
/// matched like a local glob: `*` stays within one `/` part).
pub fn objects(
    source_name: &str,
    s3: &S3Source,
    timeout: Duration,
) -> Result<Vec<String>, SourceError> {
    if !is_glob(&s3.key) {
        return Ok(vec![s3.url.clone()]);
    }
    let pattern = glob::Pattern::new(&s3.key).map_err(|e| SourceError::Read {
        source_name: source_name.to_string(),
        file: s3.url.clone(),
        message: e.to_string(),
    })?;
    // the prefix up to the last `/` before the first wildcard is listed whole
    let first_wild = s3.key.find(['*', '?', '[']).unwrap_or(s3.key.len());
    let prefix = s3.key[..first_wild]
        .rfind('/')
        .map_or("", |i| &s3.key[..=i]);
    let listing = format!("s3://{}/{prefix}", s3.bucket);
    let options = cloud_options(s3, timeout);
    let listed = polars_async::ASYNC
        .block_on(polars::io::cloud::glob(
            PlRefPath::new(listing.as_str()),
            Some(&options),
        ))
        .map_err(|e| error(source_name, s3, &s3.url, &e.to_string()))?;
    let strip = format!("s3://{}/", s3.bucket);
    let how = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut urls: Vec<String> = listed
        .into_iter()
        .filter(|u| {
            u.strip_prefix(&strip)
                .is_some_and(|key| pattern.matches_with(key, how))
        })
        .collect();
    urls.sort();
    if urls.is_empty() {
        return Err(SourceError::NoFiles {
            source_name: source_name.to_string(),
            pattern: s3.url.clone(),
        });
    }
    Ok(urls)
}

/// The whole of one object (a workbook, which calamine reads from memory),
/// fetched with the source's connection options and per-request `timeout`.
/// An error comes back in the store's own words, which the loader's one
/// mapping of store errors ([`read_error`], in `source::read_file`) turns
/// into a message naming the bucket or key, as for any other object.
pub fn get(
    source_name: &str,
    s3: &S3Source,
    object: &str,
    timeout: Duration,
) -> Result<Vec<u8>, SourceError> {
    use polars::io::cloud::concurrency_config::{ConcurrencyStrategy, FetchConfig};
    let options = cloud_options(s3, timeout);
    let fetched = polars_async::ASYNC.block_on(async {
        let (location, store) =
            polars::io::cloud::build_object_store(PlRefPath::new(object), Some(&options), false)
                .await?;
        let path = polars::io::cloud::object_path_from_str(&location.prefix)?;
        let size = store.head(&path, ConcurrencyStrategy::Legacy).await?.size;
        let size = usize::try_from(size).map_err(|_| {
            polars::prelude::PolarsError::ComputeError("the object is too large".into())
        })?;
        let bytes = store
            .get_range(&path, 0..size, FetchConfig::legacy())
            .await?;
        Ok::<_, polars::prelude::PolarsError>(bytes.to_vec())
    });
    fetched.map_err(|e| SourceError::Read {
        source_name: source_name.to_string(),
        file: object.to_string(),
        message: e.to_string(),
    })
}

/// The store's error codes [`error`] tells apart.
const CODES: [&str; 5] = [
    "NoSuchBucket",
    "NoSuchKey",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
];

/// A read error of `object` as [`error`] words it. Polars first asks for the
/// object's size with a HEAD request, whose refusal has no body and so no
/// error code: a missing bucket, a missing key and a wrong secret would all
/// be a bare 404 or 403. Then the object's key is listed, and the listing's
/// refusal, which has a code, says which.
pub fn read_error(
    source_name: &str,
    s3: &S3Source,
    object: &str,
    raw: &str,
    timeout: Duration,
) -> SourceError {
    if !CODES.iter().any(|c| raw.contains(c)) {
        let options = cloud_options(s3, timeout);
        let listed = polars_async::ASYNC.block_on(polars::io::cloud::glob(
            PlRefPath::new(object),
            Some(&options),
        ));
        if let Err(e) = listed {
            let said = e.to_string();
            if CODES.iter().any(|c| said.contains(c)) {
                return error(source_name, s3, object, &said);
            }
        }
    }
    error(source_name, s3, object, raw)
}

/// A read or listing error as a message that names the bucket or key and
/// says what would be right; the store's own words follow, with any
/// credential from the environment blanked out.
pub fn error(source_name: &str, s3: &S3Source, object: &str, raw: &str) -> SourceError {
    let has = |code: &str| raw.contains(code);
    let endpoint = s3
        .endpoint_url
        .as_deref()
        .map_or_else(|| "AWS S3".to_string(), |e| format!("the endpoint {e}"));
    let what = if has("NoSuchBucket") {
        format!(
            "bucket `{}` does not exist at {endpoint} (check the bucket name, `region` and `endpoint_url`)",
            s3.bucket
        )
    } else if has("NoSuchKey") || has("not found") || has("404 Not Found") {
        format!(
            "no object `{object}` (check the key; a glob such as s3://bucket/prefix/*.csv lists keys)"
        )
    } else if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") {
        format!(
            "{endpoint} refused the credentials for bucket `{}` (the access key id or secret is wrong: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)",
            s3.bucket
        )
    } else if has("AccessDenied") || has("403 Forbidden") {
        format!(
            "access to `{object}` was denied (the credentials lack s3:GetObject / s3:ListBucket on bucket `{}`)",
            s3.bucket
        )
    } else if has("credential") || has("Credential") {
        format!(
            "no usable AWS credentials for bucket `{}` (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or run with an instance role)",
            s3.bucket
        )
    } else {
        format!("cannot read `{object}` from {endpoint}")
    };
    let first = raw.lines().next().unwrap_or_default();
    SourceError::Read {
        source_name: source_name.to_string(),
        file: object.to_string(),
        message: format!("{what}: {}", redact(first)),
    }
}

/// `text` with the values of the AWS credential variables blanked out: an
/// error from a store may echo what it was sent.
fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        if let Ok(v) = std::env::var(var)
            && v.len() >= 4
        {
            out = out.replace(&v, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_told_from_keys() {
        assert!(is_glob("a/*.csv") && is_glob("a/2024-0?.csv") && !is_glob("a/b.csv"));
    }

    #[test]
    fn errors_name_the_bucket_or_key_and_never_a_secret() {
        let s3 = S3Source {
            url: "s3://exports/a/*.csv".into(),
            bucket: "exports".into(),
            key: "a/*.csv".into(),
            endpoint_url: Some("http://127.0.0.1:9000".into()),
            region: None,
            path_style: Some(true),
        };
        let msg = |raw: &str| error("s", &s3, "s3://exports/a/x.csv", raw).to_string();
        let m = msg("Generic S3 error: <Code>NoSuchBucket</Code>");
        assert!(
            m.contains("bucket `exports` does not exist at the endpoint http://127.0.0.1:9000"),
            "{m}"
        );
        let m = msg("Object at location a/x.csv not found: NoSuchKey");
        assert!(m.contains("no object `s3://exports/a/x.csv`"), "{m}");
        let m = msg("Client error with status 403 Forbidden: InvalidAccessKeyId");
        assert!(
            m.contains("refused the credentials for bucket `exports`"),
            "{m}"
        );
        assert!(
            m.starts_with("source `s`: cannot read `s3://exports/a/x.csv`"),
            "{m}"
        );
    }
}
