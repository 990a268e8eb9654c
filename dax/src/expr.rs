//! DynamoDB expressions compiled as the DAX client compiles them: DAX takes
//! condition, key-condition, filter and projection expressions as CBOR
//! S-expressions (`[function, args...]`), not as text. The compiled form is
//! `[1, spec, [values...]]` (projections: `[1, spec]`), where `spec` names
//! attributes directly (`#names` substituted) and refers to values by their order of
//! first use in that expression (`[17, index]`).
//!
//! Grammar as DynamoDB documents it (DynamoDB Developer Guide, "Condition and filter
//! expressions, operators, and functions":
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>):
//! comparisons, `BETWEEN`, `IN`, the functions, `NOT` binding tighter than `AND`,
//! `AND` tighter than `OR`, both left-associative. Update expressions (DynamoDB
//! Developer Guide, "Update expressions":
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html>)
//! compile to `[1, [action...], [values...]]`, each action `[code, path, operand]`
//! (`[22, path]` for REMOVE) in the order written; operands may be `a + b`,
//! `a - b`, `if_not_exists(path, v)` and `list_append(a, b)`.
//! Neighbour: [`crate::codec`] places the compiled bytes in requests.

use crate::cbor::{Encoder, TAG_PATH_ORDINAL};
use crate::codec::encode_attribute_value;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeSet, HashMap};

/// Function codes of the S-expressions.
pub mod func {
    pub const EQ: i64 = 0;
    pub const NE: i64 = 1;
    pub const LT: i64 = 2;
    pub const GE: i64 = 3;
    pub const GT: i64 = 4;
    pub const LE: i64 = 5;
    pub const AND: i64 = 6;
    pub const OR: i64 = 7;
    pub const NOT: i64 = 8;
    pub const BETWEEN: i64 = 9;
    pub const IN: i64 = 10;
    pub const ATTRIBUTE_EXISTS: i64 = 11;
    pub const ATTRIBUTE_NOT_EXISTS: i64 = 12;
    pub const ATTRIBUTE_TYPE: i64 = 13;
    pub const BEGINS_WITH: i64 = 14;
    pub const CONTAINS: i64 = 15;
    pub const SIZE: i64 = 16;
    pub const VARIABLE: i64 = 17;
    pub const DOCUMENT_PATH: i64 = 18;
    pub const SET_ACTION: i64 = 19;
    pub const ADD_ACTION: i64 = 20;
    pub const DELETE_ACTION: i64 = 21;
    pub const REMOVE_ACTION: i64 = 22;
    pub const IF_NOT_EXISTS: i64 = 23;
    pub const LIST_APPEND: i64 = 24;
    pub const PLUS: i64 = 25;
    pub const MINUS: i64 = 26;
}

pub const ENCODING_FORMAT: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Id(String),
    Name(String),
    Value(String),
    Index(i64),
    Sym(&'static str),
}

fn lex(s: &str, kind: &str) -> Result<Vec<Tok>, ExprError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: usize| {
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or("");
        if let Some(sym) = ["<>", "<=", ">="].into_iter().find(|t| *t == two) {
            out.push(Tok::Sym(sym));
            i += 2;
            continue;
        }
        if let Some(sym) = ["=", "<", ">", "(", ")", ",", ".", "+", "-"]
            .into_iter()
            .find(|t| t.as_bytes()[0] == c)
        {
            out.push(Tok::Sym(sym));
            i += 1;
            continue;
        }
        match c {
            b'#' | b':' => {
                let j = word(i + 1);
                if j == i + 1 {
                    return Err(syntax(kind, &s[i..i + 1]));
                }
                let t = s[i..j].to_string();
                out.push(if c == b'#' {
                    Tok::Name(t)
                } else {
                    Tok::Value(t)
                });
                i = j;
            }
            b'[' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j == i + 1 || b.get(j) != Some(&b']') {
                    return Err(syntax(kind, "["));
                }
                let n = s[i + 1..j].parse().map_err(|_| syntax(kind, "["))?;
                out.push(Tok::Index(n));
                i = j + 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let j = word(i);
                out.push(Tok::Id(s[i..j].to_string()));
                i = j;
            }
            _ => return Err(syntax(kind, &s[i..i + 1])),
        }
    }
    Ok(out)
}

fn syntax(kind: &str, near: &str) -> ExprError {
    ExprError(format!("Invalid {kind}: Syntax error; token: \"{near}\""))
}

/// Compiles the expressions of one request, sharing its names and values.
#[derive(Debug)]
pub struct Compiler<'a> {
    names: &'a HashMap<String, String>,
    values: &'a HashMap<String, AttributeValue>,
    unused_names: BTreeSet<String>,
    unused_values: BTreeSet<String>,
}

struct Parser<'c, 'a> {
    toks: Vec<Tok>,
    pos: usize,
    kind: &'static str,
    c: &'c mut Compiler<'a>,
    var_ids: HashMap<String, usize>,
    vars: Vec<Vec<u8>>,
}

fn function(code: i64, args: &[Vec<u8>]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(args.len() + 1).int(code);
    for a in args {
        e.raw(a);
    }
    e.into_bytes()
}

/// Every function name of the expression language.
const FUNCTIONS: [&str; 8] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
];

/// The words that start an update expression's clauses.
const CLAUSES: [(&str, i64); 4] = [
    ("SET", func::SET_ACTION),
    ("REMOVE", func::REMOVE_ACTION),
    ("ADD", func::ADD_ACTION),
    ("DELETE", func::DELETE_ACTION),
];

fn keyword(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Id(w)) if w.eq_ignore_ascii_case(k))
}

impl<'c, 'a> Parser<'c, 'a> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn err(&self) -> ExprError {
        let near = match self.peek() {
            None => "<EOF>".to_string(),
            Some(Tok::Id(s) | Tok::Name(s) | Tok::Value(s)) => s.clone(),
            Some(Tok::Index(n)) => format!("[{n}]"),
            Some(Tok::Sym(s)) => s.to_string(),
        };
        syntax(self.kind, &near)
    }
    fn eat(&mut self, sym: &'static str) -> Result<(), ExprError> {
        if self.peek() == Some(&Tok::Sym(sym)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym)
    }

    fn or(&mut self) -> Result<Vec<u8>, ExprError> {
        let mut left = self.and()?;
        while keyword(self.peek(), "or") {
            self.pos += 1;
            let right = self.and()?;
            left = function(func::OR, &[left, right]);
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Vec<u8>, ExprError> {
        let mut left = self.unary()?;
        while keyword(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = function(func::AND, &[left, right]);
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Vec<u8>, ExprError> {
        if keyword(self.peek(), "not") {
            self.pos += 1;
            let inner = self.unary()?;
            return Ok(function(func::NOT, &[inner]));
        }
        if self.is_sym("(") {
            // A parenthesised condition, or a parenthesised operand starting a comparison.
            let save = (self.pos, self.vars.len(), self.var_ids.clone());
            self.pos += 1;
            if let Ok(inner) = self.or() {
                if self.is_sym(")") {
                    self.pos += 1;
                    if !self.at_comparison() {
                        return Ok(inner);
                    }
                }
            }
            // Not a grouping: parse again as an operand, forgetting the values seen.
            self.pos = save.0;
            self.vars.truncate(save.1);
            self.var_ids = save.2;
        }
        self.predicate()
    }
    fn at_comparison(&self) -> bool {
        matches!(
            self.peek(),
            Some(Tok::Sym("=" | "<>" | "<" | "<=" | ">" | ">="))
        ) || keyword(self.peek(), "between")
            || keyword(self.peek(), "in")
    }
    fn predicate(&mut self) -> Result<Vec<u8>, ExprError> {
        // A function call standing alone is a condition (attribute_exists(...)).
        let is_call = matches!(self.peek(), Some(Tok::Id(_)))
            && self.toks.get(self.pos + 1) == Some(&Tok::Sym("("));
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Sym(s)) => match *s {
                "=" => Some(func::EQ),
                "<>" => Some(func::NE),
                "<" => Some(func::LT),
                "<=" => Some(func::LE),
                ">" => Some(func::GT),
                ">=" => Some(func::GE),
                _ => None,
            },
            _ => None,
        };
        if let Some(code) = op {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(function(code, &[left, right]));
        }
        if keyword(self.peek(), "between") {
            self.pos += 1;
            let low = self.operand()?;
            if !keyword(self.peek(), "and") {
                return Err(self.err());
            }
            self.pos += 1;
            let high = self.operand()?;
            return Ok(function(func::BETWEEN, &[left, low, high]));
        }
        if keyword(self.peek(), "in") {
            self.pos += 1;
            self.eat("(")?;
            let mut list = vec![self.operand()?];
            while self.is_sym(",") {
                self.pos += 1;
                list.push(self.operand()?);
            }
            self.eat(")")?;
            let mut e = Encoder::new();
            e.array(list.len());
            for l in &list {
                e.raw(l);
            }
            return Ok(function(func::IN, &[left, e.into_bytes()]));
        }
        if is_call {
            return Ok(left);
        }
        Err(self.err())
    }
    fn operand(&mut self) -> Result<Vec<u8>, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Value(v)) => {
                self.pos += 1;
                self.variable(&v)
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let inner = self.operand()?;
                self.eat(")")?;
                Ok(inner)
            }
            Some(Tok::Id(name)) if self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) => {
                self.pos += 2;
                let update = self.kind == "UpdateExpression";
                let code =
                    match name.to_ascii_lowercase().as_str() {
                        "attribute_exists" if !update => func::ATTRIBUTE_EXISTS,
                        "attribute_not_exists" if !update => func::ATTRIBUTE_NOT_EXISTS,
                        "attribute_type" if !update => func::ATTRIBUTE_TYPE,
                        "begins_with" if !update => func::BEGINS_WITH,
                        "contains" if !update => func::CONTAINS,
                        "size" if !update => func::SIZE,
                        "if_not_exists" if update => func::IF_NOT_EXISTS,
                        "list_append" if update => func::LIST_APPEND,
                        other if FUNCTIONS.contains(&other) => {
                            // The official client refuses these the same way (a
                            // condition function in an update, or the reverse).
                            return Err(ExprError(format!(
                            "Invalid {}: The function '{name}' is not allowed in a {} expression",
                            self.kind,
                            self.kind.trim_end_matches("Expression").to_ascii_lowercase()
                        )));
                        }
                        other => {
                            return Err(ExprError(format!(
                                "Invalid {}: Invalid function name: function: {other}",
                                self.kind
                            )))
                        }
                    };
                let mut args = vec![self.operand()?];
                while self.is_sym(",") {
                    self.pos += 1;
                    args.push(self.operand()?);
                }
                self.eat(")")?;
                Ok(function(code, &args))
            }
            Some(Tok::Id(_) | Tok::Name(_)) => self.path(),
            _ => Err(self.err()),
        }
    }
    /// `SET p = v, ... REMOVE p, ... ADD p :v, ... DELETE p :v, ...`, clauses in any
    /// order; actions kept in the order written.
    fn update(&mut self) -> Result<Vec<Vec<u8>>, ExprError> {
        let mut actions = Vec::new();
        loop {
            let clause = CLAUSES.iter().find(|(k, _)| keyword(self.peek(), k));
            let Some((_, code)) = clause else {
                return Err(self.err());
            };
            self.pos += 1;
            loop {
                let path = self.path()?;
                actions.push(match *code {
                    func::SET_ACTION => {
                        self.eat("=")?;
                        let value = self.set_value()?;
                        function(func::SET_ACTION, &[path, value])
                    }
                    func::REMOVE_ACTION => function(func::REMOVE_ACTION, &[path]),
                    c => {
                        let Some(Tok::Value(v)) = self.peek().cloned() else {
                            return Err(self.err());
                        };
                        self.pos += 1;
                        let value = self.variable(&v)?;
                        function(c, &[path, value])
                    }
                });
                if self.is_sym(",") {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            if self.peek().is_none() {
                return Ok(actions);
            }
        }
    }
    /// A SET action's value: an operand, or two joined by `+` or `-`, possibly in
    /// parentheses.
    fn set_value(&mut self) -> Result<Vec<u8>, ExprError> {
        if self.is_sym("(") {
            let save = (self.pos, self.vars.len(), self.var_ids.clone());
            self.pos += 1;
            if let Ok(inner) = self.set_value() {
                if self.is_sym(")") {
                    self.pos += 1;
                    if !self.is_sym("+") && !self.is_sym("-") {
                        return Ok(inner);
                    }
                }
            }
            self.pos = save.0;
            self.vars.truncate(save.1);
            self.var_ids = save.2;
        }
        let left = self.operand()?;
        let code = if self.is_sym("+") {
            func::PLUS
        } else if self.is_sym("-") {
            func::MINUS
        } else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(function(code, &[left, right]))
    }
    fn path_element(&mut self) -> Result<Vec<u8>, ExprError> {
        let mut e = Encoder::new();
        match self.peek().cloned() {
            Some(Tok::Id(s)) => {
                e.text(&s);
            }
            Some(Tok::Name(n)) => {
                let sub = self.c.names.get(&n).ok_or_else(|| {
                    ExprError(format!(
                        "Invalid {}. Substitution value not provided for {n}",
                        self.kind
                    ))
                })?;
                self.c.unused_names.remove(&n);
                e.text(sub);
            }
            _ => return Err(self.err()),
        }
        self.pos += 1;
        Ok(e.into_bytes())
    }
    fn path(&mut self) -> Result<Vec<u8>, ExprError> {
        let mut parts = vec![self.path_element()?];
        loop {
            match self.peek() {
                Some(Tok::Sym(".")) => {
                    self.pos += 1;
                    parts.push(self.path_element()?);
                }
                Some(Tok::Index(n)) => {
                    let n = *n;
                    self.pos += 1;
                    let mut e = Encoder::new();
                    e.tag(TAG_PATH_ORDINAL).int(n);
                    parts.push(e.into_bytes());
                }
                _ => break,
            }
        }
        Ok(function(func::DOCUMENT_PATH, &parts))
    }
    fn variable(&mut self, name: &str) -> Result<Vec<u8>, ExprError> {
        let value = self.c.values.get(name).ok_or_else(|| {
            ExprError(format!(
                "Invalid {}: An expression attribute value used in expression is not defined: {name}",
                self.kind
            ))
        })?;
        self.c.unused_values.remove(name);
        let id = match self.var_ids.get(name) {
            Some(id) => *id,
            None => {
                let id = self.vars.len();
                let mut e = Encoder::new();
                encode_attribute_value(&mut e, value).map_err(|m| ExprError(m.to_string()))?;
                self.vars.push(e.into_bytes());
                self.var_ids.insert(name.to_string(), id);
                id
            }
        };
        let mut e = Encoder::new();
        e.array(2).int(func::VARIABLE).int(id as i64);
        Ok(e.into_bytes())
    }
}

impl<'a> Compiler<'a> {
    pub fn new(
        names: &'a HashMap<String, String>,
        values: &'a HashMap<String, AttributeValue>,
    ) -> Self {
        Compiler {
            names,
            values,
            unused_names: names.keys().cloned().collect(),
            unused_values: values.keys().cloned().collect(),
        }
    }

    fn parser(&mut self, text: &str, kind: &'static str) -> Result<Parser<'_, 'a>, ExprError> {
        Ok(Parser {
            toks: lex(text, kind)?,
            pos: 0,
            kind,
            c: self,
            var_ids: HashMap::new(),
            vars: Vec::new(),
        })
    }

    /// A condition, key-condition or filter expression; `kind` names it in errors
    /// (`ConditionExpression`).
    pub fn condition(&mut self, text: &str, kind: &'static str) -> Result<Vec<u8>, ExprError> {
        let mut p = self.parser(text, kind)?;
        let spec = p.or()?;
        if p.peek().is_some() {
            return Err(p.err());
        }
        let mut e = Encoder::new();
        e.array(3)
            .int(ENCODING_FORMAT)
            .raw(&spec)
            .array(p.vars.len());
        for v in &p.vars {
            e.raw(v);
        }
        Ok(e.into_bytes())
    }

    pub fn update(&mut self, text: &str) -> Result<Vec<u8>, ExprError> {
        let mut p = self.parser(text, "UpdateExpression")?;
        let actions = p.update()?;
        let mut e = Encoder::new();
        e.array(3).int(ENCODING_FORMAT).array(actions.len());
        for a in &actions {
            e.raw(a);
        }
        e.array(p.vars.len());
        for v in &p.vars {
            e.raw(v);
        }
        Ok(e.into_bytes())
    }

    pub fn projection(&mut self, text: &str) -> Result<Vec<u8>, ExprError> {
        let mut p = self.parser(text, "ProjectionExpression")?;
        let mut paths = vec![p.path()?];
        while p.is_sym(",") {
            p.pos += 1;
            paths.push(p.path()?);
        }
        if p.peek().is_some() {
            return Err(p.err());
        }
        let mut e = Encoder::new();
        e.array(2).int(ENCODING_FORMAT).array(paths.len());
        for path in &paths {
            e.raw(path);
        }
        Ok(e.into_bytes())
    }

    /// After every expression of the request: DynamoDB refuses unused names and values.
    pub fn finish(&self) -> Result<(), ExprError> {
        if !self.unused_names.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                self.unused_names
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !self.unused_values.is_empty() {
            return Err(ExprError(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                self.unused_values
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_conditions_like_the_official_client() {
        let names = HashMap::from([("#k".to_string(), "session_id".to_string())]);
        let values = HashMap::from([(":k".to_string(), AttributeValue::S("s1".into()))]);
        let mut c = Compiler::new(&names, &values);
        let out = c.condition("#k = :k", "KeyConditionExpression");
        // [1, [0, [18, "session_id"], [17, 0]], ["s1"]]
        let mut want = vec![0x83, 0x01, 0x83, 0x00, 0x82, 0x12, 0x6a];
        want.extend_from_slice(b"session_id");
        want.extend_from_slice(&[0x82, 0x11, 0x00, 0x81, 0x62, b's', b'1']);
        assert_eq!(out, Ok(want));
        assert_eq!(c.finish(), Ok(()));
        let mut c = Compiler::new(&names, &values);
        assert!(c.condition("#k = ", "ConditionExpression").is_err());
        let mut c = Compiler::new(&names, &values);
        assert!(c.condition("a = :k", "ConditionExpression").is_ok());
        assert!(c.finish().is_err_and(|e| e.0.contains("#k")));
        let mut c = Compiler::new(&names, &values);
        let n = c.condition(
            "NOT attribute_not_exists(a.b[2]) AND (x < :k OR y BETWEEN :k AND :k)",
            "ConditionExpression",
        );
        assert!(n.is_ok(), "{n:?}");
    }

    #[test]
    fn compiles_update_expressions_like_the_official_client() {
        let names = HashMap::from([("#n".to_string(), "name".to_string())]);
        let values = HashMap::from([
            (":v".to_string(), AttributeValue::S("x".into())),
            (":one".to_string(), AttributeValue::N("1".into())),
        ]);
        let mut c = Compiler::new(&names, &values);
        let out = c.update("SET #n = :v REMOVE a ADD b :one SET c = c + :one");
        // [1, [[19, [18,"name"], [17,0]], [22, [18,"a"]], [20, [18,"b"], [17,1]],
        //      [19, [18,"c"], [25, [18,"c"], [17,1]]]], ["x", 1]]
        let mut want = vec![0x83, 0x01, 0x84];
        want.extend([0x83, 0x13, 0x82, 0x12, 0x64]);
        want.extend(b"name");
        want.extend([0x82, 0x11, 0x00]);
        want.extend([0x82, 0x16, 0x82, 0x12, 0x61, b'a']);
        want.extend([0x83, 0x14, 0x82, 0x12, 0x61, b'b', 0x82, 0x11, 0x01]);
        want.extend([0x83, 0x13, 0x82, 0x12, 0x61, b'c']);
        want.extend([0x83, 0x18, 0x19, 0x82, 0x12, 0x61, b'c', 0x82, 0x11, 0x01]);
        want.extend([0x82, 0x61, b'x', 0x01]);
        assert_eq!(out, Ok(want));
        assert_eq!(c.finish(), Ok(()));
        // Functions belong to their expression kind; clauses need actions.
        for bad in [
            "SET a = size(b)",
            "SET a = :v,",
            "a = :v",
            "SET a = :v + ",
            "REMOVE",
            "ADD a",
        ] {
            let mut c = Compiler::new(&names, &values);
            assert!(c.update(bad).is_err(), "{bad}");
        }
        let mut c = Compiler::new(&names, &values);
        assert!(c
            .condition("if_not_exists(a, :v) = :v", "ConditionExpression")
            .is_err());
        let mut c = Compiler::new(&names, &values);
        let nested = c.update("SET l = list_append(if_not_exists(l, :v), :v), m = (:one)");
        assert!(nested.is_ok(), "{nested:?}");
    }
}
