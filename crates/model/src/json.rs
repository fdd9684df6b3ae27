//! JSON text with its object keys sorted at every level, whatever map type serde_json was
//! built with: cedar-policy turns on serde_json's `preserve_order` for the whole build, and
//! the policy documents, commands and answers Keyward writes keep the sorted form they have
//! always had (goldens, audit details, fingerprints).

use serde_json::Value;

/// `v` as compact JSON text, keys sorted.
pub fn sorted(v: &Value) -> String {
    let mut v = v.clone();
    v.sort_all_objects();
    v.to_string()
}

/// `v` as pretty JSON text, keys sorted.
pub fn sorted_pretty(v: &Value) -> String {
    let mut v = v.clone();
    v.sort_all_objects();
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A `serialize_with` for a `Value` field: written with its keys sorted.
pub fn serialize_sorted<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    let mut v = v.clone();
    v.sort_all_objects();
    v.serialize(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_come_out_sorted_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": 3}});
        assert_eq!(
            super::sorted(&v),
            r#"{"a":{"c":3,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }
}
