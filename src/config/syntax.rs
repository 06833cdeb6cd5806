//! Syntax checks the config compiler makes without connecting: the form of
//! an `s3://bucket/key` URL, of an HTTP(S) URL, and the `$name` placeholders
//! of a SQL query.
//!
//! They live here, below `source`, so that `check-config` and a run read a URL
//! or a query the same way: `source::s3` and `source::sql` use these and never
//! parse the text again.

/// `(bucket, key)` of an `s3://bucket/key` URL, or what is wrong with it.
/// The key may be a glob (`*`, `?`, `[…]`, `**` as a whole path part).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(format!("must start with s3://, got {url:?}"));
    };
    let Some((bucket, key)) = rest.split_once('/') else {
        return Err(format!(
            "{url:?} names no key: give s3://bucket/key or a glob such as s3://bucket/exports/*.parquet"
        ));
    };
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .zip(bucket.bytes().last())
            .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if !bucket_ok {
        return Err(format!(
            "bucket {bucket:?} in {url:?} is not a bucket name (3-63 lowercase letters, digits, dots and hyphens)"
        ));
    }
    if key.is_empty() || key.ends_with('/') {
        return Err(format!(
            "{url:?} names a folder, not an object: give a key or a glob such as s3://{bucket}/{key}*.csv"
        ));
    }
    if let Err(e) = glob::Pattern::new(key) {
        return Err(format!("the key glob {key:?} is not valid: {e}"));
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// The `$name` placeholders of a query, in order of first use, outside
/// quoted literals and identifiers (`'…'`, `"…"`).
pub fn placeholders(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in placeholder_ranges(query) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Each placeholder with its byte range in `query`.
pub fn placeholder_ranges(query: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let b = query.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'$' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(b.len(), |n| i + 1 + n);
                if end > i + 1 {
                    out.push((query[i + 1..end].to_string(), i..end));
                    i = end;
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// `Ok` for an http:// or https:// URL with a host; else what is wrong, in
/// words that start with the URL (for a message that goes on with an example).
pub fn http_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(format!("must start with http:// or https://, got {u:?}"));
    }
    match url::Url::parse(u) {
        Ok(p) if p.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) | Err(url::ParseError::EmptyHost) => {
            Err(format!("{u:?} is not a URL: it names no host"))
        }
        Err(e) => Err(format!("{u:?} is not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_key_or_glob() {
        let ok = |u: &str| split_url(u).unwrap();
        assert_eq!(
            ok("s3://exports/wbr/*.parquet"),
            ("exports".into(), "wbr/*.parquet".into())
        );
        assert_eq!(ok("s3://my.bucket-1/a.csv").1, "a.csv");
        let bad = |u: &str, want: &str| {
            let e = split_url(u).unwrap_err();
            assert!(e.contains(want), "{u}: {e}");
        };
        bad("s3://exports", "names no key");
        bad("s3://exports/", "names a folder");
        bad("s3://exports/wbr/", "names a folder");
        bad("s3://Exports/a.csv", "not a bucket name");
        bad("s3://ab/a.csv", "not a bucket name");
        bad("s3://-ab/a.csv", "not a bucket name");
        bad("s3:///a.csv", "not a bucket name");
        bad("s3://exports/a/***.csv", "not valid");
        bad("gs://exports/a.csv", "must start with s3://");
    }

    #[test]
    fn placeholders_are_named_outside_literals() {
        let q = "SELECT day, '$to is text' AS \"$x\", value FROM t WHERE day >= $from AND day <= $to AND day > $from";
        assert_eq!(placeholders(q), ["from", "to"]);
        assert_eq!(
            placeholders("SELECT 1 WHERE a = $1 OR b = $since"),
            ["1", "since"]
        );
        assert!(placeholders("SELECT '$' || x, 3 $ 4").is_empty());
    }
}
