//! The hclspec schema language as Nomad's client interprets it (protocol.md §3.2), as a plain Rust
//! tree the encoder walks, plus cty type expressions (`list(string)`, `map(number)`, …).
//! Type expressions are parsed with hcl-rs's expression parser, not by hand.

use std::collections::BTreeMap;

/// A cty type, as written in an hclspec `Attr.type` / `BlockAttrs.type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtyType {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `any` (cty's DynamicPseudoType): the value keeps its concrete shape.
    Any,
    /// `list(T)`
    List(Box<CtyType>),
    /// `set(T)`
    Set(Box<CtyType>),
    /// `map(T)`
    Map(Box<CtyType>),
    /// `tuple([T, …])`
    Tuple(Vec<CtyType>),
    /// `object({k = T, …})`
    Object(BTreeMap<String, CtyType>),
}

impl CtyType {
    /// Parses a type expression such as `list(map(string))`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("empty type expression".to_owned());
        }
        let body = hcl::parse(&format!("t = {text}\n"))
            .map_err(|e| format!("type expression {text:?} does not parse: {e}"))?;
        let expr = body
            .attributes()
            .next()
            .map(|a| a.expr.clone())
            .ok_or_else(|| format!("type expression {text:?} is empty"))?;
        Self::from_expr(&expr).map_err(|e| format!("type expression {text:?}: {e}"))
    }

    fn from_expr(expr: &hcl::Expression) -> Result<Self, String> {
        use hcl::Expression as E;
        match expr {
            E::Variable(v) => match v.as_str() {
                "string" => Ok(Self::String),
                "number" => Ok(Self::Number),
                "bool" => Ok(Self::Bool),
                "any" => Ok(Self::Any),
                other => Err(format!("unknown type {other:?}")),
            },
            E::FuncCall(call) => {
                let name = call.name.name.as_str();
                let [arg] = call.args.as_slice() else {
                    return Err(format!("{name}(...) takes exactly one argument"));
                };
                match (name, arg) {
                    ("list", a) => Ok(Self::List(Box::new(Self::from_expr(a)?))),
                    ("set", a) => Ok(Self::Set(Box::new(Self::from_expr(a)?))),
                    ("map", a) => Ok(Self::Map(Box::new(Self::from_expr(a)?))),
                    ("tuple", E::Array(items)) => Ok(Self::Tuple(
                        items
                            .iter()
                            .map(Self::from_expr)
                            .collect::<Result<_, _>>()?,
                    )),
                    ("object", E::Object(attrs)) => {
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            let key = match k {
                                hcl::ObjectKey::Identifier(i) => i.as_str().to_owned(),
                                hcl::ObjectKey::Expression(E::String(s)) => s.clone(),
                                _ => return Err("object attribute names must be names".to_owned()),
                            };
                            out.insert(key, Self::from_expr(v)?);
                        }
                        Ok(Self::Object(out))
                    }
                    (other, _) => Err(format!("unknown type constructor {other:?}")),
                }
            }
            _ => Err("not a type".to_owned()),
        }
    }
}

impl std::fmt::Display for CtyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String => f.write_str("string"),
            Self::Number => f.write_str("number"),
            Self::Bool => f.write_str("bool"),
            Self::Any => f.write_str("any"),
            Self::List(t) => write!(f, "list({t})"),
            Self::Set(t) => write!(f, "set({t})"),
            Self::Map(t) => write!(f, "map({t})"),
            Self::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Self::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {t}")?;
                }
                f.write_str("})")
            }
        }
    }
}

/// One hclspec node. Names are optional where hclspec lets the enclosing object's key imply them.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    /// Every key present in the output; keys imply the names of nested attrs and blocks.
    Object(BTreeMap<String, Spec>),
    /// A tuple of specs (no implied names).
    Array(Vec<Spec>),
    /// An attribute converted to `ty`.
    Attr {
        /// Input name (empty = implied by the object key).
        name: String,
        /// Target type.
        ty: CtyType,
        /// Missing is an error.
        required: bool,
    },
    /// Zero or one block.
    Block {
        /// Block type name (empty = implied).
        name: String,
        /// Missing is an error.
        required: bool,
        /// Spec of the block body.
        nested: Box<Spec>,
    },
    /// A block whose attributes form a `map(ty)`.
    BlockAttrs {
        /// Block type name (empty = implied).
        name: String,
        /// Element type.
        ty: CtyType,
        /// Missing is an error.
        required: bool,
    },
    /// Repeated blocks as a list (none → empty list).
    BlockList {
        /// Block type name (empty = implied).
        name: String,
        /// Fewest blocks allowed.
        min_items: u64,
        /// Most blocks allowed (0 = unlimited).
        max_items: u64,
        /// Spec of each block body.
        nested: Box<Spec>,
    },
    /// Repeated blocks as a set (none → empty set).
    BlockSet {
        /// Block type name (empty = implied).
        name: String,
        /// Fewest blocks allowed.
        min_items: u64,
        /// Most blocks allowed (0 = unlimited).
        max_items: u64,
        /// Spec of each block body.
        nested: Box<Spec>,
    },
    /// Labelled blocks as nested maps keyed by the labels.
    BlockMap {
        /// Block type name (empty = implied).
        name: String,
        /// Label names, outermost first.
        labels: Vec<String>,
        /// Spec of each block body.
        nested: Box<Spec>,
    },
    /// `primary` unless it is null, else `default`. Neither gets an implied name.
    Default {
        /// Preferred spec.
        primary: Box<Spec>,
        /// Fallback spec.
        default: Box<Spec>,
    },
    /// A constant, written as an HCL expression (`"5"`, `"\"text\""`, `"[\"a\"]"`).
    Literal(String),
}

impl Spec {
    /// Converts the plugin's ConfigSchema / TaskConfigSchema answer, as Nomad's client does
    /// (`hclspecutils.Convert`); a missing nested spec or a bad type is an error naming the node.
    pub fn from_proto(spec: &crate::pb::hclspec::Spec) -> Result<Self, String> {
        use crate::pb::hclspec::spec::Block as B;
        let nested = |s: &Option<Box<crate::pb::hclspec::Spec>>, what: &str| {
            s.as_deref()
                .ok_or_else(|| format!("{what}: nested spec is missing"))
                .and_then(Self::from_proto)
                .map(Box::new)
        };
        let ty = |t: &str, what: &str| CtyType::parse(t).map_err(|e| format!("{what}: {e}"));
        match spec.block.as_ref() {
            None => Err("empty spec node".to_owned()),
            Some(B::Object(o)) => o
                .attributes
                .iter()
                .map(|(k, s)| {
                    Self::from_proto(s)
                        .map(|v| (k.clone(), v))
                        .map_err(|e| format!("{k}: {e}"))
                })
                .collect::<Result<_, _>>()
                .map(Spec::Object),
            Some(B::Array(a)) => a
                .values
                .iter()
                .map(Self::from_proto)
                .collect::<Result<_, _>>()
                .map(Spec::Array),
            Some(B::Attr(a)) => Ok(Spec::Attr {
                name: a.name.clone(),
                ty: ty(&a.r#type, &format!("attribute {:?}", a.name))?,
                required: a.required,
            }),
            Some(B::BlockValue(b)) => Ok(Spec::Block {
                name: b.name.clone(),
                required: b.required,
                nested: nested(&b.nested, &format!("block {:?}", b.name))?,
            }),
            Some(B::BlockAttrs(b)) => Ok(Spec::BlockAttrs {
                name: b.name.clone(),
                ty: ty(&b.r#type, &format!("block_attrs {:?}", b.name))?,
                required: b.required,
            }),
            Some(B::BlockList(b)) => Ok(Spec::BlockList {
                name: b.name.clone(),
                min_items: b.min_items,
                max_items: b.max_items,
                nested: nested(&b.nested, &format!("block_list {:?}", b.name))?,
            }),
            Some(B::BlockSet(b)) => Ok(Spec::BlockSet {
                name: b.name.clone(),
                min_items: b.min_items,
                max_items: b.max_items,
                nested: nested(&b.nested, &format!("block_set {:?}", b.name))?,
            }),
            Some(B::BlockMap(b)) => {
                if b.labels.is_empty() {
                    return Err(format!("block_map {:?}: labels must not be empty", b.name));
                }
                Ok(Spec::BlockMap {
                    name: b.name.clone(),
                    labels: b.labels.clone(),
                    nested: nested(&b.nested, &format!("block_map {:?}", b.name))?,
                })
            }
            Some(B::Default(d)) => Ok(Spec::Default {
                primary: nested(&d.primary, "default primary")?,
                default: nested(&d.default, "default default")?,
            }),
            Some(B::Literal(l)) => Ok(Spec::Literal(l.value.clone())),
        }
    }
}
