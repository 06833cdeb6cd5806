//! The keys a raw config table accepts, read from its `Deserialize` impl, for
//! "did you mean `fdr`?" on an unknown key.
//!
//! serde_derive hands a struct's field names (renames applied: `match`,
//! `where`) to `Deserializer::deserialize_struct`; [`Probe`] is a deserializer
//! that walks down a key path to the struct there, takes its names and stops.
//! Nothing is deserialized, so the names cannot drift from `raw.rs`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// The field names of the struct `T` holds under `path` (table keys; array
/// items and options are passed through); empty when the path leads to
/// anything but a struct (a map such as `where`, a value).
pub fn keys_at<'de, T: Deserialize<'de>>(path: &[String]) -> &'static [&'static str] {
    let mut found = None;
    // always an error: the probe stops the walk once it has the names
    let _ = T::deserialize(Probe {
        path,
        found: &mut found,
    });
    found.unwrap_or_default()
}

/// The closest key to `unknown` among `keys`, when it is close enough to be
/// the one meant (a typo, a swapped pair, a case slip), else `None`.
pub fn suggestion<'k>(unknown: &str, keys: &[&'k str]) -> Option<&'k str> {
    let typed = unknown.to_lowercase();
    keys.iter()
        .map(|k| (strsim::damerau_levenshtein(&typed, k), *k))
        // at most two edits, and at most one per three letters
        .filter(|(d, k)| *d <= 2 && d * 3 <= k.len().max(typed.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Why the walk ended (it always ends early).
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stop")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// Walks `path` (the keys still to go) and records the field names found at its end.
struct Probe<'a> {
    path: &'a [String],
    found: &'a mut Option<&'static [&'static str]>,
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        match self.path.split_first() {
            None => {
                *self.found = Some(fields);
                Err(Stop)
            }
            Some((key, rest)) => visitor.visit_map(OneEntry {
                key: Some(key),
                value: Some(Probe {
                    path: rest,
                    found: self.found,
                }),
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    /// An array of tables: its one item is walked on.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneItem(Some(self)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A table with one key: the next one of the path.
struct OneEntry<'a> {
    key: Option<&'a String>,
    value: Option<Probe<'a>>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        self.key
            .take()
            .map(|k| seed.deserialize(k.as_str().into_deserializer()))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(self.value.take().ok_or(Stop)?)
    }
}

/// An array with one item.
struct OneItem<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneItem<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        self.0.take().map(|p| seed.deserialize(p)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;

    fn keys(path: &[&str]) -> &'static [&'static str] {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        keys_at::<RawConfig>(&path)
    }

    #[test]
    fn keys_come_from_the_raw_types_at_their_path() {
        assert!(keys(&[]).contains(&"detection"));
        assert!(keys(&["detection"]).contains(&"fdr"));
        // an array of tables, renamed fields
        assert!(keys(&["source"]).contains(&"value_column"));
        assert!(keys(&["metric"]).contains(&"match"));
        assert!(keys(&["metric", "bounds"]).contains(&"lower"));
        assert!(keys(&["owners", "rule"]).contains(&"escalate_to"));
        assert!(keys(&["report"]).len() > 1);
        // a map, a value, a key that is not there: nothing to suggest from
        assert!(keys(&["owners", "rule", "where"]).is_empty());
        assert!(keys(&["detection", "fdr"]).is_empty());
        assert!(keys(&["nothing"]).is_empty());
    }

    #[test]
    fn only_close_keys_are_suggested() {
        let k = &[
            "fdr",
            "calendar",
            "memory_budget",
            "host",
            "path",
            "value_column",
        ];
        for (typed, meant) in [
            ("fdrr", Some("fdr")),
            ("FDR", Some("fdr")),
            ("hots", Some("host")),
            ("pth", Some("path")),
            ("calender", Some("calendar")),
            ("value_colum", Some("value_column")),
            ("memory", None),
            ("colour", None),
            ("x", None),
        ] {
            assert_eq!(suggestion(typed, k), meant, "{typed}");
        }
    }
}
