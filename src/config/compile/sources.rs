//! `[[source]]`: where an export is (a path or glob, a URL, S3, SQL), its
//! format, layout and dialect, checked against the kind of source.

use super::*;

impl Compiler {
    /// `source[i]`; `None` when where it is cannot be told (reported).
    pub(super) fn source(&mut self, i: usize, mut s: raw::RawSource) -> Option<SourceConfig> {
        let k = |f: &str| format!("source[{i}].{f}");
        let name = s.name.clone().unwrap_or_else(|| format!("source{i}"));
        let location = self.location(&k, &s)?;
        let format = self.format(&k, s.format.as_deref(), &location);
        let dialect = self.dialect(&k, &s, format, &location);
        let layout = self.layout(&k, &mut s);
        let granularity = s.granularity.as_deref().and_then(|g| {
            let parsed = Granularity::parse(g);
            if parsed.is_none() {
                self.problem(
                    &k("granularity"),
                    format!("unknown granularity {g:?} (minute; Nmin for N minutes under an hour that divide a day, such as 5min, 15min or 30min; hour, day or week)"),
                );
            }
            parsed
        });
        let timezone = self.tz(&k("timezone"), s.timezone.as_deref());
        let delay = self
            .float(
                &k("expected_delay_hours"),
                s.expected_delay_hours,
                EXPECTED_DELAY_HOURS,
            )
            .unwrap_or(raw::DEFAULT_EXPECTED_DELAY_HOURS);
        let timeout = self.secs(
            &k("timeout_secs"),
            s.timeout_secs,
            SOURCE_TIMEOUT_SECS,
            raw::DEFAULT_URL_TIMEOUT_SECS,
        );
        let max_download_bytes = self
            .int(
                &k("max_download_bytes"),
                s.max_download_bytes,
                MAX_DOWNLOAD_BYTES,
            )
            .map_or(raw::DEFAULT_MAX_DOWNLOAD_BYTES, i64::unsigned_abs);
        let duplicates = self.choice(
            &k("duplicates"),
            s.duplicates.as_deref(),
            &[
                ("error", Duplicates::Error),
                ("first", Duplicates::First),
                ("last", Duplicates::Last),
                ("sum", Duplicates::Sum),
                ("mean", Duplicates::Mean),
            ],
            Duplicates::Error,
        );
        let owner = s
            .owner
            .as_deref()
            .and_then(|o| self.mailbox(&k("owner"), o));
        Some(SourceConfig {
            name,
            location,
            format,
            layout,
            time_column: s
                .time_column
                .unwrap_or_else(|| raw::DEFAULT_TIME_COLUMN.into()),
            dimensions: s.dimensions,
            granularity,
            timezone,
            expected_delay: Duration::from_secs_f64(delay * 3600.0),
            timeout,
            max_download_bytes,
            duplicates,
            owner,
            dialect,
        })
    }

    /// A source's `path`, `url` or `sql` (one of them), and the keys that
    /// belong to another kind of source reported.
    fn location(&mut self, k: &dyn Fn(&str) -> String, s: &raw::RawSource) -> Option<Location> {
        let location = match (s.path.clone(), s.url.clone(), s.sql.clone()) {
            (Some(p), None, None) if p.starts_with("s3://") => Location::S3(self.s3_source(
                k,
                p,
                s.endpoint_url.clone(),
                s.region.clone(),
                s.path_style,
            )?),
            (Some(p), None, None) => {
                if let Some((scheme, _)) = p.split_once("://") {
                    self.problem(
                        &k("path"),
                        format!(
                            "{scheme}:// is not a source kind: give a file or glob, s3://bucket/key, or an HTTP(S) address as `url`"
                        ),
                    );
                }
                Location::Path(self.path(&p).to_string_lossy().into_owned())
            }
            (None, Some(u), None) => {
                if let Err(e) = http_url(&u) {
                    self.problem(
                        &k("url"),
                        format!("{e}, e.g. \"https://reports.example.com/wbr.csv\""),
                    );
                }
                Location::Url(u)
            }
            (None, None, Some(q)) => Location::Sql(self.sql_source(
                k,
                q,
                s.url_env.clone(),
                s.url_file.clone(),
                s.history_days,
            )?),
            (None, None, None) => {
                self.problem(
                    &k("path"),
                    "missing: give `path` (file or glob), `url` or `sql`".into(),
                );
                return None;
            }
            _ => {
                self.problem(
                    &k("path"),
                    "give one of `path`, `url` or `sql`, not several".into(),
                );
                return None;
            }
        };
        if !matches!(location, Location::Sql(_)) {
            for (key, given) in [
                ("url_env", s.url_env.is_some()),
                ("url_file", s.url_file.is_some()),
                ("history_days", s.history_days.is_some()),
            ] {
                if given {
                    self.problem(&k(key), "only for SQL sources (`sql = …`)".into());
                }
            }
        }
        if !matches!(location, Location::S3(_)) {
            for (key, given) in [
                ("endpoint_url", s.endpoint_url.is_some()),
                ("region", s.region.is_some()),
                ("path_style", s.path_style.is_some()),
            ] {
                if given {
                    self.problem(
                        &k(key),
                        "only for S3 sources (`path = \"s3://bucket/key\"`)".into(),
                    );
                }
            }
        }
        Some(location)
    }

    /// A source's `format`, by default the one its path or URL ends with.
    fn format(
        &mut self,
        k: &dyn Fn(&str) -> String,
        format: Option<&str>,
        location: &Location,
    ) -> Format {
        let target = match location {
            Location::Path(p) | Location::Url(p) => p.to_ascii_lowercase(),
            Location::S3(s3) => s3.key.to_ascii_lowercase(),
            Location::Sql(_) => String::new(),
        };
        let from_extension = || {
            let t = target.split('?').next().unwrap_or("");
            t.rsplit_once('.')
                .and_then(|(_, ext)| Format::from_extension(ext))
                .unwrap_or(Format::Csv)
        };
        self.choice(
            &k("format"),
            format,
            &[
                ("csv", Format::Csv),
                ("parquet", Format::Parquet),
                ("ndjson", Format::Ndjson),
                ("jsonl", Format::Ndjson),
                ("json", Format::Ndjson),
                ("xlsx", Format::Workbook),
                ("xls", Format::Workbook),
                ("ods", Format::Workbook),
                ("excel", Format::Workbook),
                ("workbook", Format::Workbook),
            ],
            from_extension(),
        )
    }

    /// A source's `layout` and the keys of its kind: `metric_column` or
    /// `metric`, and `value_column`, of a long export; `metrics` of a wide one.
    /// Takes those keys out of `s`.
    fn layout(&mut self, k: &dyn Fn(&str) -> String, s: &mut raw::RawSource) -> Layout {
        let shape = self.choice(
            &k("layout"),
            Some(s.layout.as_deref().unwrap_or(raw::DEFAULT_LAYOUT)),
            &[("long", Shape::Long), ("wide", Shape::Wide)],
            Shape::Long,
        );
        match shape {
            Shape::Long => {
                if s.metrics.is_some() {
                    self.problem(&k("metrics"), "only for layout = \"wide\"".into());
                }
                let metric = match (s.metric_column.take(), s.metric.take()) {
                    (Some(_), Some(m)) => {
                        self.problem(
                            &k("metric"),
                            "give either metric_column (the column naming each row's metric) or metric (one metric for every row), not both".into(),
                        );
                        MetricName::Fixed(m)
                    }
                    (None, Some(m)) => {
                        if m.trim().is_empty() {
                            self.problem(
                                &k("metric"),
                                "must not be empty: the metric's name, e.g. \"signups\"".into(),
                            );
                        }
                        MetricName::Fixed(m)
                    }
                    (c, None) => {
                        MetricName::Column(c.unwrap_or_else(|| raw::DEFAULT_METRIC_COLUMN.into()))
                    }
                };
                Layout::Long {
                    metric,
                    value_column: s
                        .value_column
                        .take()
                        .unwrap_or_else(|| raw::DEFAULT_VALUE_COLUMN.into()),
                }
            }
            Shape::Wide => {
                if s.metric_column.is_some() || s.value_column.is_some() {
                    self.problem(
                        &k("layout"),
                        "metric_column/value_column are only for layout = \"long\"".into(),
                    );
                }
                if s.metric.is_some() {
                    self.problem(
                        &k("metric"),
                        "only for layout = \"long\" (one metric for every row); a wide export's metrics are its columns".into(),
                    );
                }
                Layout::Wide {
                    metrics: s.metrics.take(),
                }
            }
        }
    }

    /// A source's `time_format`, `decimal`, `encoding`, `delimiter`, `sheet`
    /// and `header_row`, each checked against the format it applies to.
    pub(super) fn dialect(
        &mut self,
        k: &dyn Fn(&str) -> String,
        s: &raw::RawSource,
        format: Format,
        location: &Location,
    ) -> Dialect {
        let time_format = s.time_format.as_deref().and_then(|f| {
            crate::text::TimeFormat::new(f)
                .map_err(|e| self.problem(&k("time_format"), e))
                .ok()
        });
        let decimal = self.choice(
            &k("decimal"),
            s.decimal.as_deref(),
            &[(".", Decimal::Point), (",", Decimal::Comma)],
            Decimal::Point,
        );
        let text_file = matches!(format, Format::Csv) && !matches!(location, Location::Sql(_));
        let encoding = s.encoding.as_deref().and_then(|e| {
            match encoding_rs::Encoding::for_label(e.trim().as_bytes()) {
                Some(enc) => Some(enc),
                None => {
                    self.problem(
                        &k("encoding"),
                        format!("unknown encoding {e:?} (e.g. \"utf-8\", \"utf-16\", \"windows-1252\", \"latin1\", \"shift_jis\")"),
                    );
                    None
                }
            }
        });
        let delimiter = s.delimiter.as_deref().and_then(|d| match d {
            "tab" | "\t" | "\\t" => Some(b'\t'),
            d if d.len() == 1
                && d.is_ascii()
                && !d.as_bytes()[0].is_ascii_alphanumeric()
                && d != "\"" =>
            {
                Some(d.as_bytes()[0])
            }
            _ => {
                self.problem(
                    &k("delimiter"),
                    format!(
                        "must be one character such as \",\", \";\", \"|\" or \"tab\", got {d:?}"
                    ),
                );
                None
            }
        });
        for (key, given) in [
            ("encoding", s.encoding.is_some()),
            ("delimiter", s.delimiter.is_some()),
        ] {
            if given && !text_file {
                self.problem(&k(key), "only for CSV sources".into());
            }
        }
        let header_row = s.header_row.and_then(|r| {
            self.int(&k("header_row"), Some(r), HEADER_ROW)
                .and_then(|r| usize::try_from(r).ok())
        });
        for (key, given) in [
            ("sheet", s.sheet.is_some()),
            ("header_row", s.header_row.is_some()),
        ] {
            if given && format != Format::Workbook {
                self.problem(
                    &k(key),
                    "only for workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods or format = \"excel\")"
                        .into(),
                );
            }
        }
        if let Some(sheet) = &s.sheet
            && sheet.trim().is_empty()
        {
            self.problem(
                &k("sheet"),
                "must not be empty: the sheet's name as its tab shows it".into(),
            );
        }
        Dialect {
            time_format,
            decimal,
            encoding,
            delimiter,
            sheet: s.sheet.clone(),
            header_row,
            period_end: s.period_end.unwrap_or(false),
        }
    }

    /// An S3 source: the URL's bucket and key (or glob) and the endpoint are
    /// checked here, without connecting; credentials are never config keys.
    pub(super) fn s3_source(
        &mut self,
        k: &dyn Fn(&str) -> String,
        url: String,
        endpoint_url: Option<String>,
        region: Option<String>,
        path_style: Option<bool>,
    ) -> Option<S3Source> {
        let (bucket, key) = match super::syntax::split_url(&url) {
            Ok(parts) => parts,
            Err(e) => {
                self.problem(&k("path"), e);
                return None;
            }
        };
        // a user or password in it is never echoed back
        let with_user = |e: &str| {
            e.split_once("://")
                .map_or(e, |(_, rest)| rest)
                .contains('@')
        };
        if let Some(e) = &endpoint_url
            && !with_user(e)
            && let Err(why) = http_url(e)
        {
            self.problem(
                &k("endpoint_url"),
                format!("{why}, e.g. \"http://127.0.0.1:9000\""),
            );
        }
        if let Some(e) = &endpoint_url
            && with_user(e)
        {
            self.problem(
                &k("endpoint_url"),
                "holds a user or password: credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), ~/.aws/credentials or the instance role, never from the config".into(),
            );
        }
        if region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            self.problem(
                &k("region"),
                "is empty: give the bucket's region, e.g. \"eu-west-1\", or leave it out".into(),
            );
        }
        Some(S3Source {
            url,
            bucket,
            key,
            endpoint_url,
            region,
            path_style,
        })
    }

    /// A SQL source: the query's placeholders are `$from` and `$to` only
    /// (bound as parameters, never spliced in), and the database URL comes
    /// from `url_env` or `url_file`, never from the config text.
    pub(super) fn sql_source(
        &mut self,
        k: &dyn Fn(&str) -> String,
        query: String,
        url_env: Option<String>,
        url_file: Option<String>,
        history_days: Option<i64>,
    ) -> Option<SqlSource> {
        if query.trim().is_empty() {
            self.problem(
                &k("sql"),
                "is empty: give the SELECT that returns the export".into(),
            );
        }
        let unknown: Vec<String> = super::syntax::placeholders(&query)
            .into_iter()
            .filter(|p| p != "from" && p != "to")
            .map(|p| format!("${p}"))
            .collect();
        if !unknown.is_empty() {
            self.problem(
                &k("sql"),
                format!(
                    "unknown placeholder(s) {}: the query may use only $from and $to (the evaluation window, bound as parameters)",
                    unknown.join(", ")
                ),
            );
        }
        let url = match (url_env, url_file) {
            (Some(e), None) => Secret::Env(e),
            (None, Some(f)) => Secret::File(self.path(&f)),
            (Some(_), Some(_)) => {
                self.problem(
                    &k("url_env"),
                    "give either `url_env` or `url_file`, not both".into(),
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    &k("url_env"),
                    "missing: a SQL source reads its database URL (postgresql://user@host/db) from `url_env` (an environment variable) or `url_file`, never from the config".into(),
                );
                return None;
            }
        };
        let history_days = self
            .int(&k("history_days"), history_days, SQL_HISTORY_DAYS)
            .map_or(raw::DEFAULT_SQL_HISTORY_DAYS, |d| {
                u32::try_from(d).unwrap_or(u32::MAX)
            });
        Some(SqlSource {
            query,
            url,
            history_days,
        })
    }
}

/// The units the sources' headers carry (`Revenue ($)` → `revenue` in `$`):
/// a wide source's listed metric columns, and the value column of a long
/// source with one fixed metric. The first source to name a metric wins.
pub(super) fn header_units(sources: &[SourceConfig]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in sources {
        // (metric, the header's unit)
        let named: Vec<(String, Option<String>)> = match &s.layout {
            Layout::Wide { metrics: Some(m) } => m
                .iter()
                .map(|h| {
                    let header = crate::text::header(h);
                    (header.slug, header.unit)
                })
                .collect(),
            Layout::Long {
                metric: MetricName::Fixed(m),
                value_column,
            } => vec![(m.clone(), crate::text::header(value_column).unit)],
            _ => Vec::new(),
        };
        for (metric, unit) in named {
            if let Some(unit) = unit {
                out.entry(metric).or_insert(unit);
            }
        }
    }
    out
}

/// A source's `layout`, before its keys are checked.
#[derive(Clone, Copy)]
enum Shape {
    Long,
    Wide,
}
