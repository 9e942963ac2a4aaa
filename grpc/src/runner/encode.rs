//! From an evaluated HCL body to the bytes Nomad puts in `msgpack_driver_config` /
//! `msgpack_config`: first hcldec's decode against the plugin's hclspec (every key of an object
//! spec present, null when unset, values converted to the attribute's type), then go-cty's
//! msgpack marshalling (protocol.md §3.3: compact ints, float64 only for dyadic fractions, other
//! numbers as decimal strings, map keys sorted).

use super::spec::{CtyType, Spec};
use std::collections::{BTreeMap, BTreeSet};

/// A cty value, after conversion to its spec's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Cty {
    /// null of any type.
    Null,
    /// bool.
    Bool(bool),
    /// number.
    Number(hcl::Number),
    /// string.
    String(String),
    /// list, set or tuple (all arrays on the wire).
    List(Vec<Cty>),
    /// map or object (maps with sorted keys on the wire).
    Map(BTreeMap<String, Cty>),
}

/// One attribute that could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EncodeError {
    /// Path of the attribute, e.g. `config.args[1]`.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Every problem found in one body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EncodeErrors(pub Vec<EncodeError>);

impl std::fmt::Display for EncodeErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Decodes `body` against `spec` and marshals the result as go-cty's msgpack does.
/// `root` names the body in errors (`config`, `plugin`).
pub fn encode_body(spec: &Spec, body: &hcl::Body, root: &str) -> Result<Vec<u8>, EncodeErrors> {
    let value = decode_body(spec, body, root)?;
    Ok(marshal(&value))
}

/// hcldec's decode of `body` against `spec`, reporting every problem at once.
pub fn decode_body(spec: &Spec, body: &hcl::Body, root: &str) -> Result<Cty, EncodeErrors> {
    let mut errs = Vec::new();
    let value = decode_level(spec, body, root, &mut errs);
    if errs.is_empty() {
        Ok(value)
    } else {
        Err(EncodeErrors(errs))
    }
}

/// Decodes one body level: the spec tree, then arguments and blocks the spec does not know.
fn decode_level(spec: &Spec, body: &hcl::Body, path: &str, errs: &mut Vec<EncodeError>) -> Cty {
    let value = decode(spec, body, None, path, errs);
    let mut attrs = BTreeSet::new();
    let mut blocks = BTreeSet::new();
    names(spec, None, &mut attrs, &mut blocks);
    for a in body.attributes() {
        if !attrs.contains(a.key.as_str()) {
            let hint = if blocks.contains(a.key.as_str()) {
                "this is a block, write it as `name { … }`"
            } else {
                "unsupported argument: the schema has no attribute of this name"
            };
            errs.push(err(&join(path, a.key.as_str()), hint));
        }
    }
    for b in body.blocks() {
        if !blocks.contains(b.identifier.as_str()) {
            let hint = if attrs.contains(b.identifier.as_str()) {
                "this is an attribute, write it as `name = value`"
            } else {
                "unsupported block: the schema has no block of this type"
            };
            errs.push(err(&join(path, b.identifier.as_str()), hint));
        }
    }
    value
}

/// The attribute and block names a spec consumes at one body level.
fn names<'a>(
    spec: &'a Spec,
    implied: Option<&'a str>,
    attrs: &mut BTreeSet<&'a str>,
    blocks: &mut BTreeSet<&'a str>,
) {
    let pick = |n: &'a str| if n.is_empty() { implied } else { Some(n) };
    match spec {
        Spec::Object(map) => {
            for (k, s) in map {
                names(s, Some(k), attrs, blocks);
            }
        }
        Spec::Array(items) => items.iter().for_each(|s| names(s, None, attrs, blocks)),
        Spec::Attr { name, .. } => attrs.extend(pick(name)),
        Spec::Block { name, .. }
        | Spec::BlockAttrs { name, .. }
        | Spec::BlockList { name, .. }
        | Spec::BlockSet { name, .. }
        | Spec::BlockMap { name, .. } => blocks.extend(pick(name)),
        Spec::Default { primary, default } => {
            names(primary, None, attrs, blocks);
            names(default, None, attrs, blocks);
        }
        Spec::Literal(_) => {}
    }
}

fn decode(
    spec: &Spec,
    body: &hcl::Body,
    implied: Option<&str>,
    path: &str,
    errs: &mut Vec<EncodeError>,
) -> Cty {
    let resolve = |name: &str, errs: &mut Vec<EncodeError>| -> Option<String> {
        let n = if name.is_empty() { implied } else { Some(name) };
        match n {
            Some(n) if !n.is_empty() => Some(n.to_owned()),
            _ => {
                errs.push(err(path, "schema error: a spec node has no name"));
                None
            }
        }
    };
    match spec {
        Spec::Object(map) => Cty::Map(
            map.iter()
                .map(|(k, s)| (k.clone(), decode(s, body, Some(k), path, errs)))
                .collect(),
        ),
        Spec::Array(items) => Cty::List(
            items
                .iter()
                .map(|s| decode(s, body, None, path, errs))
                .collect(),
        ),
        Spec::Attr { name, ty, required } => {
            let Some(name) = resolve(name, errs) else {
                return Cty::Null;
            };
            let field = join(path, &name);
            match body.attributes().find(|a| a.key.as_str() == name) {
                None if *required => {
                    errs.push(err(&field, "required attribute is missing"));
                    Cty::Null
                }
                None => Cty::Null,
                Some(a) => {
                    let v = hcl::Value::from(a.expr.clone());
                    convert(&v, ty, &field).unwrap_or_else(|e| {
                        errs.push(e);
                        Cty::Null
                    })
                }
            }
        }
        Spec::Block {
            name,
            required,
            nested,
        } => {
            let Some(name) = resolve(name, errs) else {
                return Cty::Null;
            };
            let field = join(path, &name);
            let found: Vec<&hcl::Block> = blocks_named(body, &name).collect();
            match found.as_slice() {
                [] if *required => {
                    errs.push(err(&field, "required block is missing"));
                    Cty::Null
                }
                [] => Cty::Null,
                [b] => {
                    no_labels(b, &field, errs);
                    decode_level(nested, &b.body, &field, errs)
                }
                [..] => {
                    errs.push(err(&field, "only one block of this type is allowed"));
                    Cty::Null
                }
            }
        }
        Spec::BlockAttrs { name, ty, required } => {
            let Some(name) = resolve(name, errs) else {
                return Cty::Null;
            };
            let field = join(path, &name);
            let found: Vec<&hcl::Block> = blocks_named(body, &name).collect();
            match found.as_slice() {
                [] if *required => {
                    errs.push(err(&field, "required block is missing"));
                    Cty::Null
                }
                [] => Cty::Null,
                [b] => {
                    no_labels(b, &field, errs);
                    for inner in b.body.blocks() {
                        errs.push(err(
                            &join(&field, inner.identifier.as_str()),
                            "blocks are not allowed here, only attributes",
                        ));
                    }
                    let mut out = BTreeMap::new();
                    for a in b.body.attributes() {
                        let f = join(&field, a.key.as_str());
                        match convert(&hcl::Value::from(a.expr.clone()), ty, &f) {
                            Ok(v) => {
                                out.insert(a.key.as_str().to_owned(), v);
                            }
                            Err(e) => errs.push(e),
                        }
                    }
                    Cty::Map(out)
                }
                [..] => {
                    errs.push(err(&field, "only one block of this type is allowed"));
                    Cty::Null
                }
            }
        }
        Spec::BlockList {
            name,
            min_items,
            max_items,
            nested,
        }
        | Spec::BlockSet {
            name,
            min_items,
            max_items,
            nested,
        } => {
            let Some(name) = resolve(name, errs) else {
                return Cty::Null;
            };
            let field = join(path, &name);
            let found: Vec<&hcl::Block> = blocks_named(body, &name).collect();
            let n = found.len() as u64;
            if n < *min_items {
                errs.push(err(
                    &field,
                    &format!("at least {min_items} block(s) required, found {n}"),
                ));
            }
            if *max_items > 0 && n > *max_items {
                errs.push(err(
                    &field,
                    &format!("at most {max_items} block(s) allowed, found {n}"),
                ));
            }
            Cty::List(
                found
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let f = format!("{field}[{i}]");
                        no_labels(b, &f, errs);
                        decode_level(nested, &b.body, &f, errs)
                    })
                    .collect(),
            )
        }
        Spec::BlockMap {
            name,
            labels,
            nested,
        } => {
            let Some(name) = resolve(name, errs) else {
                return Cty::Null;
            };
            let field = join(path, &name);
            let mut out = Cty::Map(BTreeMap::new());
            for b in blocks_named(body, &name) {
                let ls: Vec<String> = b.labels.iter().map(|l| l.as_str().to_owned()).collect();
                if ls.len() != labels.len() {
                    errs.push(err(
                        &field,
                        &format!(
                            "expected {} label(s) ({}), found {}",
                            labels.len(),
                            labels.join(", "),
                            ls.len()
                        ),
                    ));
                    continue;
                }
                let f = format!("{field}[{}]", ls.join("]["));
                let v = decode_level(nested, &b.body, &f, errs);
                insert_nested(&mut out, &ls, v, &f, errs);
            }
            out
        }
        Spec::Default { primary, default } => match decode(primary, body, None, path, errs) {
            Cty::Null => decode(default, body, None, path, errs),
            v => v,
        },
        Spec::Literal(text) => match literal(text) {
            Ok(v) => v,
            Err(reason) => {
                errs.push(err(path, &format!("schema literal {text:?}: {reason}")));
                Cty::Null
            }
        },
    }
}

fn blocks_named<'b>(body: &'b hcl::Body, name: &'b str) -> impl Iterator<Item = &'b hcl::Block> {
    body.blocks().filter(move |b| b.identifier.as_str() == name)
}

fn no_labels(b: &hcl::Block, field: &str, errs: &mut Vec<EncodeError>) {
    if !b.labels.is_empty() {
        errs.push(err(field, "this block takes no labels"));
    }
}

fn insert_nested(
    into: &mut Cty,
    labels: &[String],
    value: Cty,
    field: &str,
    errs: &mut Vec<EncodeError>,
) {
    let Cty::Map(map) = into else {
        errs.push(err(field, "label conflicts with another block"));
        return;
    };
    match labels {
        [] => {}
        [last] => {
            if map.insert(last.clone(), value).is_some() {
                errs.push(err(field, "duplicate block labels"));
            }
        }
        [first, rest @ ..] => {
            let slot = map
                .entry(first.clone())
                .or_insert_with(|| Cty::Map(BTreeMap::new()));
            insert_nested(slot, rest, value, field, errs);
        }
    }
}

/// Evaluates an hclspec Literal (an HCL expression) to its concrete cty value.
fn literal(text: &str) -> Result<Cty, String> {
    let body = hcl::parse(&format!("v = {text}\n")).map_err(|e| e.to_string())?;
    let a = body
        .attributes()
        .next()
        .ok_or_else(|| "empty literal".to_owned())?;
    let v: hcl::Value = super::hcl_eval::evaluate(&a.expr, &hcl::eval::Context::new())
        .map_err(|e| e.to_string())?;
    convert(&v, &CtyType::Any, "literal").map_err(|e| e.reason)
}

/// cty's conversion of a value to `ty`, as hcldec applies it to an attribute.
pub fn convert(v: &hcl::Value, ty: &CtyType, field: &str) -> Result<Cty, EncodeError> {
    use hcl::Value as V;
    let wrong = |want: &str| err(field, &format!("{want} required, found {}", describe(v)));
    if matches!(v, V::Null) {
        return Ok(Cty::Null);
    }
    match ty {
        CtyType::Any => Ok(match v {
            V::Null => Cty::Null,
            V::Bool(b) => Cty::Bool(*b),
            V::Number(n) => Cty::Number(*n),
            V::String(s) => Cty::String(s.clone()),
            V::Array(items) => Cty::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| convert(x, &CtyType::Any, &format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            V::Object(m) => Cty::Map(
                m.iter()
                    .map(|(k, x)| {
                        convert(x, &CtyType::Any, &join(field, k)).map(|c| (k.clone(), c))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        }),
        CtyType::String => match v {
            V::String(s) => Ok(Cty::String(s.clone())),
            V::Number(n) => Ok(Cty::String(number_text(n))),
            V::Bool(b) => Ok(Cty::String(b.to_string())),
            _ => Err(wrong("a string")),
        },
        CtyType::Number => match v {
            V::Number(n) => Ok(Cty::Number(*n)),
            V::String(s) => parse_number(s)
                .map(Cty::Number)
                .ok_or_else(|| err(field, &format!("a number required, found string {s:?}"))),
            _ => Err(wrong("a number")),
        },
        CtyType::Bool => match v {
            V::Bool(b) => Ok(Cty::Bool(*b)),
            V::String(s) if s == "true" => Ok(Cty::Bool(true)),
            V::String(s) if s == "false" => Ok(Cty::Bool(false)),
            _ => Err(wrong("a bool")),
        },
        CtyType::List(t) | CtyType::Set(t) => {
            let V::Array(items) = v else {
                return Err(wrong(&format!("a {ty}")));
            };
            let mut out: Vec<Cty> = items
                .iter()
                .enumerate()
                .map(|(i, x)| convert(x, t, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?;
            if matches!(ty, CtyType::Set(_)) {
                sort_set(&mut out);
            }
            Ok(Cty::List(out))
        }
        CtyType::Map(t) => {
            let V::Object(m) = v else {
                return Err(wrong(&format!("a {ty}")));
            };
            m.iter()
                .map(|(k, x)| convert(x, t, &join(field, k)).map(|c| (k.clone(), c)))
                .collect::<Result<_, _>>()
                .map(Cty::Map)
        }
        CtyType::Tuple(ts) => {
            let V::Array(items) = v else {
                return Err(wrong(&format!("a {ty}")));
            };
            if items.len() != ts.len() {
                return Err(err(
                    field,
                    &format!(
                        "a tuple of {} elements required, found {}",
                        ts.len(),
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .zip(ts)
                .enumerate()
                .map(|(i, (x, t))| convert(x, t, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Cty::List)
        }
        CtyType::Object(attrs) => {
            let V::Object(m) = v else {
                return Err(wrong(&format!("an {ty}")));
            };
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(k.as_str())) {
                return Err(err(&join(field, extra), "unsupported attribute"));
            }
            if let Some(absent) = attrs.keys().find(|k| !m.contains_key(k.as_str())) {
                // cty object types have no optional attributes here: each must be given.
                return Err(err(&join(field, absent), "attribute is required"));
            }
            attrs
                .iter()
                .map(|(k, t)| {
                    let x = m.get(k).cloned().unwrap_or(V::Null);
                    convert(&x, t, &join(field, k)).map(|c| (k.clone(), c))
                })
                .collect::<Result<_, _>>()
                .map(Cty::Map)
        }
    }
}

/// cty's set order for the element kinds a config holds: strings and numbers ascending,
/// duplicates removed. Other kinds keep their order (cty's hash order is not reproducible).
fn sort_set(items: &mut Vec<Cty>) {
    if items.iter().all(|c| matches!(c, Cty::String(_))) {
        items.sort_by(|a, b| match (a, b) {
            (Cty::String(x), Cty::String(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
    } else if items.iter().all(|c| matches!(c, Cty::Number(_))) {
        items.sort_by(|a, b| match (a, b) {
            (Cty::Number(x), Cty::Number(y)) => number_f64(x).total_cmp(&number_f64(y)),
            _ => std::cmp::Ordering::Equal,
        });
    }
    items.dedup();
}

fn number_f64(n: &hcl::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn parse_number(s: &str) -> Option<hcl::Number> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(hcl::Number::from(i));
    }
    if let Ok(u) = t.parse::<u64>() {
        return Some(hcl::Number::from(u));
    }
    t.parse::<f64>().ok().and_then(hcl::Number::from_f64)
}

/// cty's number → string conversion (`big.Float.Text('f', -1)`): shortest decimal, no exponent.
fn number_text(n: &hcl::Number) -> String {
    if let Some(i) = n.as_i64().filter(|_| !n.is_f64()) {
        return i.to_string();
    }
    if let Some(u) = n.as_u64().filter(|_| !n.is_f64()) {
        return u.to_string();
    }
    let f = number_f64(n);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

fn describe(v: &hcl::Value) -> String {
    match v {
        hcl::Value::Null => "null".into(),
        hcl::Value::Bool(b) => format!("bool {b}"),
        hcl::Value::Number(n) => format!("number {}", number_text(n)),
        hcl::Value::String(s) => format!("string {:?}", shorten(s)),
        hcl::Value::Array(a) => format!("a list of {} element(s)", a.len()),
        hcl::Value::Object(_) => "an object".into(),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn err(field: &str, reason: &str) -> EncodeError {
    EncodeError {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// go-cty's msgpack marshalling of a value whose type is known statically (Nomad always
/// marshals with the value's own type, so no dynamic-type wrappers appear).
pub fn marshal(v: &Cty) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, v);
    out
}

fn write(out: &mut Vec<u8>, v: &Cty) {
    // Writing into a Vec cannot fail; the results are ignored for that reason only.
    use rmp::encode as e;
    match v {
        Cty::Null => {
            let _ = e::write_nil(out);
        }
        Cty::Bool(b) => {
            let _ = e::write_bool(out, *b);
        }
        Cty::String(s) => {
            let _ = e::write_str(out, s);
        }
        Cty::Number(n) => write_number(out, n),
        Cty::List(items) => {
            let _ = e::write_array_len(out, len32(items.len()));
            items.iter().for_each(|x| write(out, x));
        }
        Cty::Map(m) => {
            let _ = e::write_map_len(out, len32(m.len()));
            for (k, x) in m {
                let _ = e::write_str(out, k);
                write(out, x);
            }
        }
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Numbers as go-cty writes them: an exact int64 in the smallest int form (the unsigned family
/// for non-negative values), a non-integral value whose decimal is exactly a float64 as float64,
/// anything else as its decimal text.
fn write_number(out: &mut Vec<u8>, n: &hcl::Number) {
    use rmp::encode as e;
    if !n.is_f64() {
        if let Some(i) = n.as_i64() {
            let _ = if i >= 0 {
                e::write_uint(out, i.unsigned_abs()).map(|_| ())
            } else {
                e::write_sint(out, i).map(|_| ())
            };
            return;
        }
        // Beyond int64: cty >= 1.16 (Nomad >= 1.9.5) sends a string.
        let _ = e::write_str(out, &number_text(n));
        return;
    }
    let f = number_f64(n);
    if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        let _ = if i >= 0 {
            e::write_uint(out, i.unsigned_abs()).map(|_| ())
        } else {
            e::write_sint(out, i).map(|_| ())
        };
    } else if f.is_infinite() || decimal_is_exact(f) {
        let _ = e::write_f64(out, f);
    } else {
        let _ = e::write_str(out, &number_text(n));
    }
}

/// Whether the shortest decimal of `f` (what the job file said) is exactly `f`, i.e. a dyadic
/// fraction: go-cty parses numbers with 512-bit precision and sends float64 only then.
fn decimal_is_exact(f: f64) -> bool {
    let text = format!("{}", f.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    let digits = format!("{int}{frac}");
    let k = u32::try_from(frac.len()).unwrap_or(u32::MAX);
    if digits.len() > 38 || k > 55 {
        return false;
    }
    let (Ok(d), Some(p)) = (digits.parse::<u128>(), 5u128.checked_pow(k)) else {
        return false;
    };
    d % p == 0 && (d / p) < (1u128 << 53)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, ty: &str, required: bool) -> Spec {
        Spec::Attr {
            name: name.into(),
            ty: CtyType::parse(ty).expect("type"),
            required,
        }
    }

    fn raw_exec_spec() -> Spec {
        let mut m = BTreeMap::new();
        m.insert("command".into(), attr("command", "string", true));
        m.insert("args".into(), attr("args", "list(string)", false));
        m.insert(
            "cgroup_v2_override".into(),
            attr("cgroup_v2_override", "string", false),
        );
        m.insert(
            "cgroup_v1_override".into(),
            attr("cgroup_v1_override", "list(map(string))", false),
        );
        m.insert(
            "oom_score_adj".into(),
            attr("oom_score_adj", "number", false),
        );
        m.insert("work_dir".into(), attr("work_dir", "string", false));
        Spec::Object(m)
    }

    fn body(text: &str) -> hcl::Body {
        hcl::parse(text).expect("hcl")
    }

    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn raw_exec_worked_example_matches_protocol_notes_byte_for_byte() {
        let bytes = encode_body(
            &raw_exec_spec(),
            &body("command = \"/bin/sleep\"\nargs = [\"10\"]\n"),
            "config",
        )
        .expect("encode");
        let want = "86 a4 61 72 67 73 91 a2 31 30 \
             b2 63 67 72 6f 75 70 5f 76 31 5f 6f 76 65 72 72 69 64 65 c0 \
             b2 63 67 72 6f 75 70 5f 76 32 5f 6f 76 65 72 72 69 64 65 c0 \
             a7 63 6f 6d 6d 61 6e 64 aa 2f 62 69 6e 2f 73 6c 65 65 70 \
             ad 6f 6f 6d 5f 73 63 6f 72 65 5f 61 64 6a c0 \
             a8 77 6f 72 6b 5f 64 69 72 c0";
        assert_eq!(
            hex(&bytes),
            want.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    fn number_bytes(src: &str) -> String {
        let mut m = BTreeMap::new();
        m.insert("n".into(), attr("n", "number", false));
        let bytes =
            encode_body(&Spec::Object(m), &body(&format!("n = {src}\n")), "c").expect("encode");
        // Strip the map header and the key "n".
        hex(&bytes[3..])
    }

    #[test]
    fn numbers_are_written_as_go_cty_writes_them() {
        assert_eq!(number_bytes("5"), "05");
        assert_eq!(number_bytes("200"), "cc c8");
        assert_eq!(number_bytes("300"), "cd 01 2c");
        assert_eq!(number_bytes("-1"), "ff");
        assert_eq!(number_bytes("-100"), "d0 9c");
        assert_eq!(number_bytes("1.5"), "cb 3f f8 00 00 00 00 00 00");
        assert_eq!(number_bytes("0.1"), "a3 30 2e 31");
        assert_eq!(number_bytes("2.0"), "02");
        assert_eq!(
            number_bytes("18446744073709551615"),
            "b4 31 38 34 34 36 37 34 34 30 37 33 37 30 39 35 35 31 36 31 35"
        );
    }

    #[test]
    fn numeric_strings_convert_to_numbers_and_numbers_to_strings() {
        let mut m = BTreeMap::new();
        m.insert("n".into(), attr("n", "number", false));
        m.insert("s".into(), attr("s", "string", false));
        m.insert("b".into(), attr("b", "bool", false));
        let v = decode_body(
            &Spec::Object(m),
            &body("n = \"42\"\ns = 7\nb = \"true\"\n"),
            "c",
        )
        .expect("decode");
        let Cty::Map(m) = v else { panic!("map") };
        assert_eq!(m["n"], Cty::Number(hcl::Number::from(42i64)));
        assert_eq!(m["s"], Cty::String("7".into()));
        assert_eq!(m["b"], Cty::Bool(true));
    }

    #[test]
    fn every_error_is_reported_with_its_field() {
        let errs = encode_body(
            &raw_exec_spec(),
            &body("args = \"not a list\"\noom_score_adj = \"x\"\ncomand = \"typo\"\n"),
            "config",
        )
        .expect_err("must fail");
        let text = errs.to_string();
        assert!(
            text.contains("config.command: required attribute is missing"),
            "{text}"
        );
        assert!(
            text.contains("config.args: a list(string) required, found string"),
            "{text}"
        );
        assert!(
            text.contains("config.oom_score_adj: a number required"),
            "{text}"
        );
        assert!(
            text.contains("config.comand: unsupported argument"),
            "{text}"
        );
        assert_eq!(errs.0.len(), 4, "{text}");
    }

    #[test]
    fn blocks_lists_sets_defaults_and_literals() {
        let mut inner = BTreeMap::new();
        inner.insert("x".into(), attr("", "number", false));
        let mut m = BTreeMap::new();
        m.insert(
            "mounts".into(),
            Spec::BlockList {
                name: "mount".into(),
                min_items: 0,
                max_items: 0,
                nested: Box::new(Spec::Object(inner.clone())),
            },
        );
        m.insert(
            "opt".into(),
            Spec::Block {
                name: String::new(),
                required: false,
                nested: Box::new(Spec::Object(inner)),
            },
        );
        m.insert(
            "labels".into(),
            Spec::BlockAttrs {
                name: String::new(),
                ty: CtyType::String,
                required: false,
            },
        );
        m.insert("tags".into(), attr("tags", "set(string)", false));
        m.insert(
            "mode".into(),
            Spec::Default {
                primary: Box::new(attr("mode", "string", false)),
                default: Box::new(Spec::Literal("\"enforce\"".into())),
            },
        );
        let v = decode_body(
            &Spec::Object(m),
            &body(
                "mount { x = 1 }\nmount { x = 2 }\nlabels { a = \"b\" }\ntags = [\"b\", \"a\", \"b\"]\n",
            ),
            "config",
        )
        .expect("decode");
        let Cty::Map(m) = v else { panic!("map") };
        assert_eq!(
            m["mounts"],
            Cty::List(vec![
                Cty::Map([("x".to_owned(), Cty::Number(1i64.into()))].into()),
                Cty::Map([("x".to_owned(), Cty::Number(2i64.into()))].into()),
            ])
        );
        assert_eq!(m["opt"], Cty::Null);
        assert_eq!(
            m["labels"],
            Cty::Map([("a".to_owned(), Cty::String("b".into()))].into())
        );
        assert_eq!(
            m["tags"],
            Cty::List(vec![Cty::String("a".into()), Cty::String("b".into())])
        );
        assert_eq!(m["mode"], Cty::String("enforce".into()));
    }

    #[test]
    fn absent_block_list_is_an_empty_list_not_null() {
        let mut m = BTreeMap::new();
        m.insert(
            "mount".into(),
            Spec::BlockList {
                name: String::new(),
                min_items: 0,
                max_items: 0,
                nested: Box::new(Spec::Object(BTreeMap::new())),
            },
        );
        let bytes = encode_body(&Spec::Object(m), &body(""), "c").expect("encode");
        assert_eq!(hex(&bytes), "81 a5 6d 6f 75 6e 74 90");
    }

    #[test]
    fn type_expressions_parse_and_bad_ones_are_errors() {
        assert_eq!(
            CtyType::parse("list(map(string))").expect("t").to_string(),
            "list(map(string))"
        );
        assert_eq!(
            CtyType::parse("object({a = number, b = list(bool)})")
                .expect("t")
                .to_string(),
            "object({a = number, b = list(bool)})"
        );
        assert!(CtyType::parse("").is_err());
        assert!(CtyType::parse("strin").is_err());
        assert!(CtyType::parse("list(string, number)").is_err());
    }

    #[test]
    fn unicode_nul_and_huge_strings_round_trip_through_rmp() {
        let mut m = BTreeMap::new();
        m.insert("s".into(), attr("s", "string", false));
        let big = "é".repeat(1 << 19);
        let b = hcl::Body::builder()
            .add_attribute(("s", format!("a\u{0}b{big}")))
            .build();
        let bytes = encode_body(&Spec::Object(m), &b, "c").expect("encode");
        let mut rd = bytes.as_slice();
        assert_eq!(rmp::decode::read_map_len(&mut rd).expect("map"), 1);
        let mut key = [0u8; 8];
        assert_eq!(rmp::decode::read_str(&mut rd, &mut key).expect("key"), "s");
        let len = rmp::decode::read_str_len(&mut rd).expect("str32 header");
        assert_eq!(rd, format!("a\u{0}b{big}").as_bytes());
        assert_eq!(len as usize, rd.len());
    }
}
