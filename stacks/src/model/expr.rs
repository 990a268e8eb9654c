//! CloudFormation values: literals and intrinsic functions.
//!
//! Every property of a typed resource (see [`super::resources`]) that can hold
//! a reference is an [`Expr`]. Expressions that point at other resources are
//! only built from typed handles ([`super::Handle`]) or cross-stack export keys
//! ([`super::OutputKey`]), so a logical ID is never typed twice by hand.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// A CloudFormation value.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Expr>),
    Map(BTreeMap<String, Expr>),
    /// `Ref` to a resource, a parameter or a pseudo parameter.
    Ref(String),
    /// `Fn::GetAtt` of a resource attribute.
    GetAtt(String, String),
    /// `Fn::Sub` with an optional variable map.
    Sub(String, BTreeMap<String, Expr>),
    Join(String, Vec<Expr>),
    ImportValue(Box<Expr>),
    /// `Fn::If` on a named condition.
    If(String, Box<Expr>, Box<Expr>),
    Select(u32, Box<Expr>),
    /// `Fn::Split`, e.g. of an imported comma-joined list.
    Split(String, Box<Expr>),
    GetAzs(Box<Expr>),
    /// `Fn::Equals`, for conditions.
    Equals(Box<Expr>, Box<Expr>),
    /// `Fn::Not`, for conditions.
    Not(Box<Expr>),
}

/// Pseudo parameters, so templates never spell `AWS::...` strings by hand.
pub mod pseudo {
    use super::Expr;

    pub fn region() -> Expr {
        Expr::Ref("AWS::Region".into())
    }
    pub fn account_id() -> Expr {
        Expr::Ref("AWS::AccountId".into())
    }
    pub fn stack_name() -> Expr {
        Expr::Ref("AWS::StackName".into())
    }
    pub fn partition() -> Expr {
        Expr::Ref("AWS::Partition".into())
    }
    pub fn url_suffix() -> Expr {
        Expr::Ref("AWS::URLSuffix".into())
    }
    pub fn no_value() -> Expr {
        Expr::Ref("AWS::NoValue".into())
    }
}

impl Expr {
    pub fn str(s: impl Into<String>) -> Self {
        Expr::Str(s.into())
    }

    /// `Fn::Sub` without variables: `${AWS::Region}` and `${Logical}` forms.
    pub fn sub(s: impl Into<String>) -> Self {
        Expr::Sub(s.into(), BTreeMap::new())
    }

    /// `Fn::Sub` with variables bound to other expressions.
    pub fn sub_with<K: Into<String>>(
        s: impl Into<String>,
        vars: impl IntoIterator<Item = (K, Expr)>,
    ) -> Self {
        Expr::Sub(
            s.into(),
            vars.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        )
    }

    pub fn join(sep: impl Into<String>, parts: impl IntoIterator<Item = Expr>) -> Self {
        Expr::Join(sep.into(), parts.into_iter().collect())
    }

    pub fn list(items: impl IntoIterator<Item = Expr>) -> Self {
        Expr::List(items.into_iter().collect())
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Expr)>) -> Self {
        Expr::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The `index`th availability zone of the stack's region.
    pub fn az(index: u32) -> Self {
        Expr::Select(index, Box::new(Expr::GetAzs(Box::new(Expr::str("")))))
    }

    pub fn split(sep: impl Into<String>, v: Expr) -> Self {
        Expr::Split(sep.into(), Box::new(v))
    }

    pub fn equals(a: Expr, b: Expr) -> Self {
        Expr::Equals(Box::new(a), Box::new(b))
    }

    pub fn negate(a: Expr) -> Self {
        Expr::Not(Box::new(a))
    }
}

impl From<&str> for Expr {
    fn from(s: &str) -> Self {
        Expr::Str(s.to_owned())
    }
}

impl From<String> for Expr {
    fn from(s: String) -> Self {
        Expr::Str(s)
    }
}

impl From<&String> for Expr {
    fn from(s: &String) -> Self {
        Expr::Str(s.clone())
    }
}

impl From<i64> for Expr {
    fn from(n: i64) -> Self {
        Expr::Int(n)
    }
}

impl From<u32> for Expr {
    fn from(n: u32) -> Self {
        Expr::Int(i64::from(n))
    }
}

impl From<bool> for Expr {
    fn from(b: bool) -> Self {
        Expr::Bool(b)
    }
}

fn single<S: Serializer, V: Serialize + ?Sized>(
    s: S,
    key: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(key, value)?;
    m.end()
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expr::Str(v) => s.serialize_str(v),
            Expr::Int(v) => s.serialize_i64(*v),
            Expr::Bool(v) => s.serialize_bool(*v),
            Expr::List(v) => v.serialize(s),
            Expr::Map(v) => v.serialize(s),
            Expr::Ref(id) => single(s, "Ref", id),
            Expr::GetAtt(id, attr) => single(s, "Fn::GetAtt", &[id, attr]),
            Expr::Sub(text, vars) if vars.is_empty() => single(s, "Fn::Sub", text),
            Expr::Sub(text, vars) => single(s, "Fn::Sub", &(text, vars)),
            Expr::Join(sep, parts) => single(s, "Fn::Join", &(sep, parts)),
            Expr::ImportValue(name) => single(s, "Fn::ImportValue", name),
            Expr::If(cond, a, b) => single(s, "Fn::If", &(cond, a, b)),
            Expr::Select(i, list) => single(s, "Fn::Select", &(i, list)),
            Expr::Split(sep, v) => single(s, "Fn::Split", &(sep, v)),
            Expr::GetAzs(region) => single(s, "Fn::GetAZs", region),
            Expr::Equals(a, b) => single(s, "Fn::Equals", &(a, b)),
            Expr::Not(a) => single(s, "Fn::Not", &[a]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(e: &Expr) -> String {
        serde_json::to_string(e).expect("serialize")
    }

    #[test]
    fn intrinsics_have_cloudformation_shapes() {
        assert_eq!(json(&Expr::Ref("Vpc".into())), r#"{"Ref":"Vpc"}"#);
        assert_eq!(
            json(&Expr::GetAtt("Alb".into(), "DNSName".into())),
            r#"{"Fn::GetAtt":["Alb","DNSName"]}"#
        );
        assert_eq!(
            json(&Expr::sub("${AWS::Region}")),
            r#"{"Fn::Sub":"${AWS::Region}"}"#
        );
        assert_eq!(
            json(&Expr::sub_with("${X}-a", [("X", Expr::Ref("P".into()))])),
            r#"{"Fn::Sub":["${X}-a",{"X":{"Ref":"P"}}]}"#
        );
        assert_eq!(
            json(&Expr::join(",", [Expr::str("a"), Expr::Int(1)])),
            r#"{"Fn::Join":[",",["a",1]]}"#
        );
        assert_eq!(
            json(&Expr::ImportValue(Box::new("x".into()))),
            r#"{"Fn::ImportValue":"x"}"#
        );
        assert_eq!(
            json(&Expr::If(
                "C".into(),
                Box::new(true.into()),
                Box::new(pseudo::no_value())
            )),
            r#"{"Fn::If":["C",true,{"Ref":"AWS::NoValue"}]}"#
        );
        assert_eq!(
            json(&Expr::az(1)),
            r#"{"Fn::Select":[1,{"Fn::GetAZs":""}]}"#
        );
        assert_eq!(
            json(&Expr::negate(Expr::equals("a".into(), "b".into()))),
            r#"{"Fn::Not":[{"Fn::Equals":["a","b"]}]}"#
        );
    }
}
