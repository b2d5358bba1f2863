//! Dotted paths (`conversation.turns`) into a JSON record: each segment is a key of a nested
//! object. A key that itself contains a dot is found as written first.

use serde_json::{Map, Value};

type Object = Map<String, Value>;

/// The value at `path`, if every segment is there.
pub(crate) fn get<'v>(obj: &'v Object, path: &str) -> Option<&'v Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    let mut cur = obj.get(first)?;
    for segment in rest.split('.') {
        cur = cur.as_object()?.get(segment)?;
    }
    Some(cur)
}

/// Takes the value at `path` out of the record (no copy).
pub(crate) fn take(obj: &mut Object, path: &str) -> Option<Value> {
    if let Some(v) = obj.remove(path) {
        return Some(v);
    }
    let (parent, last) = path.rsplit_once('.')?;
    let mut cur = obj;
    for segment in parent.split('.') {
        cur = cur.get_mut(segment)?.as_object_mut()?;
    }
    cur.remove(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_nested_keys_and_literal_dots_win() {
        let Value::Object(mut o) = json!({"a": {"b": {"c": 1}}, "x.y": 2, "x": {"y": 3}}) else {
            unreachable!()
        };
        assert_eq!(get(&o, "a.b.c"), Some(&json!(1)));
        assert_eq!(get(&o, "x.y"), Some(&json!(2)));
        assert_eq!(get(&o, "a.z"), None);
        assert_eq!(get(&o, "a.b.c.d"), None);
        assert_eq!(take(&mut o, "a.b.c"), Some(json!(1)));
        assert_eq!(get(&o, "a.b"), Some(&json!({})));
        assert_eq!(take(&mut o, "x.y"), Some(json!(2)));
        assert_eq!(take(&mut o, "x.y"), Some(json!(3)));
    }
}
