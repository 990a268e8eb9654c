//! The DAX requests and responses, in both directions: what the client encodes and
//! decodes ([`crate::client`]), and what a server decodes and encodes (the test
//! server in `src/testserver.rs`, feature `test-server`). Facts from the official
//! clients' public source (Python `amazon-dax-client` 2.1.0, `amazondax/generated/Stubs.py`,
//! `AttributeValueEncoder.py`, `Assemblers.py`; Go `aws-dax-go`,
//! `dax/internal/client/request.go`), re-expressed here:
//!
//! - a request is `1` (the service), the method id, the method's arguments, then
//!   either `null` or an indefinite-length map of optional parameters keyed by
//!   [`param`] numbers; the official client always sends `ReturnConsumedCapacity`
//!   (default `NONE`), so the map is always there for data operations;
//! - a key is one CBOR byte string: for a hash-only table the hash value's own
//!   bytes (text as raw UTF-8, a number as CBOR); with a range key the hash value
//!   as CBOR followed by the range value raw (text as UTF-8, a number in
//!   [`crate::number::lex_encode`] form);
//! - an item's other attributes are one byte string: the id of their name list
//!   (sorted names, defined once per node with `defineAttributeListId`) followed by
//!   the values in that order;
//! - a response starts with an empty array (success) or with the error's code
//!   path, message and `[request id, DynamoDB code, HTTP status]`.

use crate::cbor::{self, CborError, Decoder, Encoder, Value};
use crate::error::DaxError;
use crate::expr::Compiler;
use crate::number::{self, Dec};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Method ids (`DaxMethodIds` in the official clients).
pub mod method {
    pub const AUTHORIZE_CONNECTION: i64 = 1489122155;
    pub const BATCH_GET_ITEM: i64 = -697851100;
    pub const BATCH_WRITE_ITEM: i64 = 116217951;
    pub const DEFINE_ATTRIBUTE_LIST: i64 = 670678385;
    pub const DEFINE_ATTRIBUTE_LIST_ID: i64 = -1230579644;
    pub const DEFINE_KEY_SCHEMA: i64 = -742646399;
    pub const DELETE_ITEM: i64 = 1013539361;
    pub const ENDPOINTS: i64 = 455855874;
    pub const GET_ITEM: i64 = 263244906;
    pub const PUT_ITEM: i64 = -2106490455;
    pub const QUERY: i64 = -931250863;
    pub const SCAN: i64 = -1875390620;
    pub const UPDATE_ITEM: i64 = 1425579023;
}

/// Optional request parameter keys (`DaxDataRequestParam`).
pub mod param {
    pub const PROJECTION_EXPRESSION: i64 = 0;
    pub const EXPRESSION_ATTRIBUTE_NAMES: i64 = 1;
    pub const CONSISTENT_READ: i64 = 2;
    pub const RETURN_CONSUMED_CAPACITY: i64 = 3;
    pub const CONDITION_EXPRESSION: i64 = 4;
    pub const EXPRESSION_ATTRIBUTE_VALUES: i64 = 5;
    pub const RETURN_ITEM_COLLECTION_METRICS: i64 = 6;
    pub const RETURN_VALUES: i64 = 7;
    pub const UPDATE_EXPRESSION: i64 = 8;
    pub const EXCLUSIVE_START_KEY: i64 = 9;
    pub const FILTER_EXPRESSION: i64 = 10;
    pub const INDEX_NAME: i64 = 11;
    pub const LIMIT: i64 = 13;
    pub const SCAN_INDEX_FORWARD: i64 = 14;
    pub const SELECT: i64 = 15;
}

/// Response parameter keys (`DaxResponseParam`).
pub mod response {
    pub const ITEM: i64 = 0;
    pub const CONSUMED_CAPACITY: i64 = 1;
    pub const ATTRIBUTES: i64 = 2;
    pub const ITEMS: i64 = 7;
    pub const COUNT: i64 = 8;
    pub const LAST_EVALUATED_KEY: i64 = 9;
    pub const SCANNED_COUNT: i64 = 10;
}

/// `ReturnValues` codes (`ReturnValuesValues`).
pub fn return_values_code(v: &str) -> Option<i64> {
    Some(match v {
        "NONE" => 1,
        "ALL_OLD" => 2,
        "UPDATED_OLD" => 3,
        "ALL_NEW" => 4,
        "UPDATED_NEW" => 5,
        _ => return None,
    })
}

/// The attribute list id DAX reserves for "no attributes".
pub const EMPTY_ATTRIBUTE_LIST_ID: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }
}

/// A table's key: the hash attribute, then the range attribute if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema(pub Vec<(String, ScalarType)>);

impl KeySchema {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
}

pub type Item = HashMap<String, AttributeValue>;

fn invalid(m: impl Into<String>) -> DaxError {
    DaxError::Validation(m.into())
}

fn malformed(m: impl Into<String>) -> DaxError {
    DaxError::Protocol(m.into())
}

impl From<CborError> for DaxError {
    fn from(e: CborError) -> Self {
        DaxError::Protocol(e.to_string())
    }
}

impl From<number::BadNumber> for DaxError {
    fn from(e: number::BadNumber) -> Self {
        DaxError::Validation(e.to_string())
    }
}

pub fn encode_attribute_value(e: &mut Encoder, av: &AttributeValue) -> Result<(), DaxError> {
    let empty_set = || {
        invalid(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        )
    };
    match av {
        AttributeValue::S(s) => {
            e.text(s);
        }
        AttributeValue::N(n) => number::encode_number(e, n)?,
        AttributeValue::B(b) => {
            e.bytes(b.as_ref());
        }
        AttributeValue::Ss(v) => {
            if v.is_empty() {
                return Err(empty_set());
            }
            e.tag(cbor::TAG_STRING_SET).array(v.len());
            for s in v {
                e.text(s);
            }
        }
        AttributeValue::Ns(v) => {
            if v.is_empty() {
                return Err(empty_set());
            }
            e.tag(cbor::TAG_NUMBER_SET).array(v.len());
            for n in v {
                number::encode_number(e, n)?;
            }
        }
        AttributeValue::Bs(v) => {
            if v.is_empty() {
                return Err(empty_set());
            }
            e.tag(cbor::TAG_BINARY_SET).array(v.len());
            for b in v {
                e.bytes(b.as_ref());
            }
        }
        AttributeValue::M(m) => {
            e.map(m.len());
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                e.text(k);
                encode_attribute_value(e, &m[k])?;
            }
        }
        AttributeValue::L(l) => {
            e.array(l.len());
            for v in l {
                encode_attribute_value(e, v)?;
            }
        }
        AttributeValue::Null(_) => {
            e.null();
        }
        AttributeValue::Bool(b) => {
            e.bool(*b);
        }
        _ => return Err(invalid("unknown AttributeValue type")),
    }
    Ok(())
}

pub fn decode_attribute_value(v: &Value) -> Result<AttributeValue, DaxError> {
    let set_of = |inner: &Value| -> Result<Vec<Value>, DaxError> {
        match inner {
            Value::Array(a) => Ok(a.clone()),
            _ => Err(malformed("set is not an array")),
        }
    };
    Ok(match v {
        Value::Text(s) => AttributeValue::S(s.clone()),
        Value::Bytes(b) => AttributeValue::B(Blob::new(b.clone())),
        Value::Int(_) | Value::Float(_) | Value::Tag(cbor::TAG_DECIMAL, _) => {
            AttributeValue::N(number::decode_number(v).ok_or_else(|| malformed("bad number"))?)
        }
        Value::Array(a) => AttributeValue::L(
            a.iter()
                .map(decode_attribute_value)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut out = HashMap::new();
            for (k, v) in m {
                let k = k
                    .as_text()
                    .ok_or_else(|| malformed("map key is not text"))?;
                out.insert(k.to_string(), decode_attribute_value(v)?);
            }
            AttributeValue::M(out)
        }
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Tag(cbor::TAG_STRING_SET, inner) => AttributeValue::Ss(
            set_of(inner)?
                .iter()
                .map(|s| s.as_text().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("string set holds a non-string"))?,
        ),
        Value::Tag(cbor::TAG_NUMBER_SET, inner) => AttributeValue::Ns(
            set_of(inner)?
                .iter()
                .map(number::decode_number)
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("number set holds a non-number"))?,
        ),
        Value::Tag(cbor::TAG_BINARY_SET, inner) => AttributeValue::Bs(
            set_of(inner)?
                .iter()
                .map(|b| b.as_bytes().map(|b| Blob::new(b.to_vec())))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("binary set holds a non-binary"))?,
        ),
        other => return Err(malformed(format!("unknown attribute value {other:?}"))),
    })
}

fn key_value<'a>(
    item: &'a Item,
    name: &str,
    t: ScalarType,
) -> Result<&'a AttributeValue, DaxError> {
    let missing = || invalid("One of the required keys was not given a value.");
    let v = item.get(name).ok_or_else(missing)?;
    let ok = matches!(
        (t, v),
        (ScalarType::S, AttributeValue::S(_))
            | (ScalarType::N, AttributeValue::N(_))
            | (ScalarType::B, AttributeValue::B(_))
    );
    if !ok {
        return Err(invalid(
            "The provided key element does not match the schema",
        ));
    }
    Ok(v)
}

/// The key bytes of `item` (which may hold other attributes too).
pub fn encode_key(item: &Item, schema: &KeySchema) -> Result<Vec<u8>, DaxError> {
    let mut e = Encoder::new();
    let (hash_name, hash_type) = schema
        .0
        .first()
        .ok_or_else(|| invalid("empty key schema"))?;
    let hash = key_value(item, hash_name, *hash_type)?;
    match schema.0.get(1) {
        None => match hash {
            AttributeValue::S(s) => {
                e.raw(s.as_bytes());
            }
            AttributeValue::N(n) => number::encode_number(&mut e, n)?,
            AttributeValue::B(b) => {
                e.raw(b.as_ref());
            }
            _ => unreachable_key()?,
        },
        Some((range_name, range_type)) => {
            encode_attribute_value(&mut e, hash)?;
            match key_value(item, range_name, *range_type)? {
                AttributeValue::S(s) => {
                    e.raw(s.as_bytes());
                }
                AttributeValue::N(n) => {
                    e.raw(&number::lex_encode(&Dec::parse(n)?));
                }
                AttributeValue::B(b) => {
                    e.raw(b.as_ref());
                }
                _ => unreachable_key()?,
            }
        }
    }
    Ok(e.into_bytes())
}

fn unreachable_key() -> Result<(), DaxError> {
    Err(invalid("key attributes must be S, N or B"))
}

/// Decodes key bytes back into key attributes.
pub fn decode_key(bytes: &[u8], schema: &KeySchema) -> Result<Item, DaxError> {
    let mut key = HashMap::new();
    let (hash_name, hash_type) = schema
        .0
        .first()
        .ok_or_else(|| malformed("empty key schema"))?;
    let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| malformed("key is not UTF-8"));
    match schema.0.get(1) {
        None => {
            let v = match hash_type {
                ScalarType::S => AttributeValue::S(utf8(bytes)?),
                ScalarType::B => AttributeValue::B(Blob::new(bytes.to_vec())),
                ScalarType::N => decode_attribute_value(&Decoder::new(bytes).value()?)?,
            };
            key.insert(hash_name.clone(), v);
        }
        Some((range_name, range_type)) => {
            let mut d = Decoder::new(bytes);
            key.insert(hash_name.clone(), decode_attribute_value(&d.value()?)?);
            let rest = d.rest();
            let v = match range_type {
                ScalarType::S => AttributeValue::S(utf8(rest)?),
                ScalarType::B => AttributeValue::B(Blob::new(rest.to_vec())),
                ScalarType::N => AttributeValue::N(
                    number::lex_decode(rest)
                        .ok_or_else(|| malformed("bad range key number"))?
                        .to_py_string(),
                ),
            };
            key.insert(range_name.clone(), v);
        }
    }
    Ok(key)
}

/// The sorted names of an item's non-key attributes (the attribute list).
pub fn attribute_names(item: &Item, schema: &KeySchema) -> Vec<String> {
    let mut names: Vec<String> = item
        .keys()
        .filter(|k| !schema.names().any(|n| n == k.as_str()))
        .cloned()
        .collect();
    names.sort();
    names
}

/// The value bytes of an item: attribute list id, then the values in list order.
pub fn encode_values(item: &Item, names: &[String], list_id: i64) -> Result<Vec<u8>, DaxError> {
    let mut e = Encoder::new();
    e.int(list_id);
    for n in names {
        let v = item
            .get(n)
            .ok_or_else(|| invalid(format!("attribute {n} missing")))?;
        encode_attribute_value(&mut e, v)?;
    }
    Ok(e.into_bytes())
}

/// An item's values as the server sent them, named once its attribute list is known.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    pub list_id: i64,
    pub values: Vec<AttributeValue>,
}

pub fn decode_values(bytes: &[u8]) -> Result<StreamItem, DaxError> {
    let all = cbor::decode_all(bytes)?;
    let (first, rest) = all
        .split_first()
        .ok_or_else(|| malformed("empty item value"))?;
    let list_id = first
        .as_int()
        .and_then(|i| i64::try_from(i).ok())
        .ok_or_else(|| malformed("attribute list id is not an integer"))?;
    Ok(StreamItem {
        list_id,
        values: rest
            .iter()
            .map(decode_attribute_value)
            .collect::<Result<_, _>>()?,
    })
}

impl StreamItem {
    /// The named attributes, given the list's names.
    pub fn named(self, names: &[String]) -> Result<Item, DaxError> {
        if names.len() < self.values.len() {
            return Err(malformed(format!(
                "Incorrect number of attributes for attribute list (got {}; expected {})",
                self.values.len(),
                names.len()
            )));
        }
        Ok(names.iter().cloned().zip(self.values).collect())
    }
}

/// Expression parts of a request, as the caller gives them.
#[derive(Debug, Clone, Default)]
pub struct Expressions<'a> {
    pub condition: Option<&'a str>,
    pub key_condition: Option<&'a str>,
    pub filter: Option<&'a str>,
    pub update: Option<&'a str>,
    pub projection: Option<&'a str>,
    pub names: Option<&'a HashMap<String, String>>,
    pub values: Option<&'a HashMap<String, AttributeValue>>,
}

/// Compiled expressions.
#[derive(Debug, Default)]
pub struct Compiled {
    pub condition: Option<Vec<u8>>,
    pub key_condition: Option<Vec<u8>>,
    pub filter: Option<Vec<u8>>,
    pub update: Option<Vec<u8>>,
    pub projection: Option<Vec<u8>>,
}

pub fn compile(x: &Expressions<'_>) -> Result<Compiled, DaxError> {
    let empty_n = HashMap::new();
    let empty_v = HashMap::new();
    let names = x.names.unwrap_or(&empty_n);
    let values = x.values.unwrap_or(&empty_v);
    for k in names.keys() {
        if !valid_placeholder(k, '#') {
            return Err(invalid(format!(
                "ExpressionAttributeNames contains invalid key: \"{k}\""
            )));
        }
    }
    for k in values.keys() {
        if !valid_placeholder(k, ':') {
            return Err(invalid(format!(
                "ExpressionAttributeValues contains invalid key: \"{k}\""
            )));
        }
    }
    let mut c = Compiler::new(names, values);
    let v = |e: crate::expr::ExprError| invalid(e.0);
    let out = Compiled {
        condition: x
            .condition
            .map(|t| c.condition(t, "ConditionExpression"))
            .transpose()
            .map_err(v)?,
        key_condition: x
            .key_condition
            .map(|t| c.condition(t, "KeyConditionExpression"))
            .transpose()
            .map_err(v)?,
        filter: x
            .filter
            .map(|t| c.condition(t, "FilterExpression"))
            .transpose()
            .map_err(v)?,
        update: x.update.map(|t| c.update(t)).transpose().map_err(v)?,
        projection: x
            .projection
            .map(|t| c.projection(t))
            .transpose()
            .map_err(v)?,
    };
    c.finish().map_err(v)?;
    Ok(out)
}

fn valid_placeholder(k: &str, prefix: char) -> bool {
    let mut chars = k.chars();
    chars.next() == Some(prefix)
        && k.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes compiled expressions and their names and values (sorted by placeholder)
/// into the optional-parameter map.
fn write_expressions(e: &mut Encoder, c: &Compiled, x: &Expressions<'_>) -> Result<(), DaxError> {
    if let Some(b) = &c.condition {
        e.int(param::CONDITION_EXPRESSION).bytes(b);
    }
    if let Some(b) = &c.filter {
        e.int(param::FILTER_EXPRESSION).bytes(b);
    }
    if let Some(b) = &c.update {
        e.int(param::UPDATE_EXPRESSION).bytes(b);
    }
    if let Some(b) = &c.projection {
        e.int(param::PROJECTION_EXPRESSION).bytes(b);
    }
    if let Some(names) = x.names.filter(|n| !n.is_empty()) {
        let mut keys: Vec<&String> = names.keys().collect();
        keys.sort();
        e.int(param::EXPRESSION_ATTRIBUTE_NAMES).map(keys.len());
        for k in keys {
            e.text(k).text(&names[k]);
        }
    }
    if let Some(values) = x.values.filter(|v| !v.is_empty()) {
        let mut keys: Vec<&String> = values.keys().collect();
        keys.sort();
        e.int(param::EXPRESSION_ATTRIBUTE_VALUES).map(keys.len());
        for k in keys {
            e.text(k);
            encode_attribute_value(e, &values[k])?;
        }
    }
    Ok(())
}

fn header(e: &mut Encoder, method: i64) {
    e.int(1).int(method);
}

pub fn encode_define_key_schema(table: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    header(&mut e, method::DEFINE_KEY_SCHEMA);
    e.bytes(table.as_bytes());
    e.into_bytes()
}

pub fn encode_define_attribute_list_id(names: &[String]) -> Vec<u8> {
    let mut e = Encoder::new();
    header(&mut e, method::DEFINE_ATTRIBUTE_LIST_ID);
    e.array(names.len());
    for n in names {
        e.text(n);
    }
    e.into_bytes()
}

pub fn encode_define_attribute_list(id: i64) -> Vec<u8> {
    let mut e = Encoder::new();
    header(&mut e, method::DEFINE_ATTRIBUTE_LIST);
    e.int(id);
    e.into_bytes()
}

pub fn encode_endpoints() -> Vec<u8> {
    let mut e = Encoder::new();
    header(&mut e, method::ENDPOINTS);
    e.into_bytes()
}

/// GetItem. `consistent_read: None` leaves the parameter out (DynamoDB's default,
/// eventually consistent, served from the item cache).
pub fn encode_get_item(
    table: &str,
    key: &Item,
    schema: &KeySchema,
    consistent_read: Option<bool>,
    x: &Expressions<'_>,
) -> Result<Vec<u8>, DaxError> {
    let compiled = compile(x)?;
    let mut e = Encoder::new();
    header(&mut e, method::GET_ITEM);
    e.bytes(table.as_bytes()).bytes(&encode_key(key, schema)?);
    e.map_stream();
    if let Some(c) = consistent_read {
        e.int(param::CONSISTENT_READ).bool(c);
    }
    e.int(param::RETURN_CONSUMED_CAPACITY).int(0);
    write_expressions(&mut e, &compiled, x)?;
    e.brk();
    Ok(e.into_bytes())
}

/// PutItem (and DeleteItem with `values: None`).
#[allow(clippy::too_many_arguments)]
pub fn encode_write(
    method: i64,
    table: &str,
    item: &Item,
    schema: &KeySchema,
    values: Option<&[u8]>,
    return_values: Option<&str>,
    x: &Expressions<'_>,
) -> Result<Vec<u8>, DaxError> {
    let compiled = compile(x)?;
    let mut e = Encoder::new();
    header(&mut e, method);
    e.bytes(table.as_bytes()).bytes(&encode_key(item, schema)?);
    if let Some(v) = values {
        e.bytes(v);
    }
    e.map_stream();
    if let Some(rv) = return_values {
        let code =
            return_values_code(rv).ok_or_else(|| invalid(format!("unknown ReturnValues {rv}")))?;
        e.int(param::RETURN_VALUES).int(code);
    }
    e.int(param::RETURN_CONSUMED_CAPACITY).int(0);
    // The official Python client (2.1.0) writes the condition's text under the
    // ConditionExpression key and then the compiled condition under the same key
    // again (Stubs.py, write_putItem / write_deleteItem); written the same way here
    // for byte conformance. DAX reads the last.
    if let Some(text) = x.condition {
        e.int(param::CONDITION_EXPRESSION).bytes(text.as_bytes());
    }
    write_expressions(&mut e, &compiled, x)?;
    e.brk();
    Ok(e.into_bytes())
}

/// Query's parameters beyond the table and expressions.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub index_name: Option<String>,
    pub limit: Option<i32>,
    pub consistent_read: Option<bool>,
    pub scan_index_forward: Option<bool>,
    pub exclusive_start_key: Option<Item>,
}

pub fn encode_query(
    table: &str,
    schema: &KeySchema,
    o: &QueryOptions,
    x: &Expressions<'_>,
) -> Result<Vec<u8>, DaxError> {
    let compiled = compile(x)?;
    let mut e = Encoder::new();
    header(&mut e, method::QUERY);
    e.bytes(table.as_bytes());
    match &compiled.key_condition {
        Some(k) => e.bytes(k),
        None => e.null(),
    };
    e.map_stream();
    if let Some(i) = &o.index_name {
        e.int(param::INDEX_NAME).bytes(i.as_bytes());
    }
    if let Some(l) = o.limit {
        e.int(param::LIMIT).int(l as i64);
    }
    if let Some(c) = o.consistent_read {
        e.int(param::CONSISTENT_READ).int(c as i64);
    }
    if let Some(f) = o.scan_index_forward {
        e.int(param::SCAN_INDEX_FORWARD).int(f as i64);
    }
    if let Some(k) = &o.exclusive_start_key {
        if o.index_name.is_some() {
            return Err(invalid(
                "ExclusiveStartKey on an index is not supported by this client",
            ));
        }
        e.int(param::EXCLUSIVE_START_KEY)
            .bytes(&encode_key(k, schema)?);
    }
    e.int(param::RETURN_CONSUMED_CAPACITY).int(0);
    let no_condition = Compiled {
        condition: None,
        key_condition: None,
        filter: compiled.filter,
        update: None,
        projection: compiled.projection,
    };
    write_expressions(&mut e, &no_condition, x)?;
    e.brk();
    Ok(e.into_bytes())
}

/// An item in a response before its attribute list is resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum RawItem {
    /// Key (from the request, or decoded from the response) and values.
    Stream { key: Item, values: StreamItem },
    /// A projection: attributes by ordinal of the projection's paths.
    Projected(Vec<(usize, AttributeValue)>),
    /// UpdateItem's `UPDATED_OLD`/`UPDATED_NEW` attributes: an attribute list id
    /// and values by their ordinal in that list (Python `AttributeValueDecoder`,
    /// `_decode_stream_item_projection`); the key is not re-inserted.
    Partial {
        list_id: i64,
        values: Vec<(usize, AttributeValue)>,
    },
}

/// One element of a projected document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElement {
    Key(String),
    Index(usize),
}

/// A projection's paths in order, `#names` substituted: a projected item comes back
/// as `{ordinal: value}`, the ordinal indexing these (Python
/// `AttributeValueEncoder._prepare_projection`, `DocumentPath.from_path`).
pub fn projection_paths(
    text: &str,
    names: Option<&HashMap<String, String>>,
) -> Result<Vec<Vec<PathElement>>, DaxError> {
    let bad = || invalid(format!("Invalid ProjectionExpression path: {text}"));
    let name = |n: &str| {
        names
            .and_then(|m| m.get(n))
            .cloned()
            .unwrap_or_else(|| n.to_string())
    };
    let mut out = Vec::new();
    for path in text.split(',') {
        let mut elements = Vec::new();
        for part in path.trim().split('.') {
            let (head, mut rest) = match part.find('[') {
                None => (part, ""),
                Some(0) => return Err(bad()),
                Some(i) => (&part[..i], &part[i..]),
            };
            if head.trim().is_empty() {
                return Err(bad());
            }
            elements.push(PathElement::Key(name(head.trim())));
            while let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(bad)?;
                elements.push(PathElement::Index(r[..end].parse().map_err(|_| bad())?));
                rest = &r[end + 1..];
            }
            if !rest.is_empty() {
                return Err(bad());
            }
        }
        out.push(elements);
    }
    Ok(out)
}

/// A projected item, nested: lists hold their elements by index until the end,
/// then keep them in index order (gaps closed), as DynamoDB returns projected list
/// elements (and the official client's `ItemBuilder` rebuilds them).
#[derive(Debug)]
enum Tree {
    Leaf(AttributeValue),
    Map(std::collections::BTreeMap<String, Tree>),
    List(std::collections::BTreeMap<usize, Tree>),
}

impl Tree {
    fn insert(&mut self, path: &[PathElement], v: AttributeValue) -> Result<(), DaxError> {
        let clash = || malformed("projected paths overlap");
        let Some((first, rest)) = path.split_first() else {
            return Err(clash());
        };
        let fresh = || match rest.first() {
            None => Tree::Leaf(AttributeValue::Null(true)),
            Some(PathElement::Key(_)) => Tree::Map(Default::default()),
            Some(PathElement::Index(_)) => Tree::List(Default::default()),
        };
        let child = match (self, first) {
            (Tree::Map(m), PathElement::Key(k)) => m.entry(k.clone()).or_insert_with(fresh),
            (Tree::List(l), PathElement::Index(i)) => l.entry(*i).or_insert_with(fresh),
            _ => return Err(clash()),
        };
        if rest.is_empty() {
            *child = Tree::Leaf(v);
            Ok(())
        } else {
            child.insert(rest, v)
        }
    }

    fn value(self) -> AttributeValue {
        match self {
            Tree::Leaf(v) => v,
            Tree::Map(m) => AttributeValue::M(m.into_iter().map(|(k, t)| (k, t.value())).collect()),
            Tree::List(l) => AttributeValue::L(l.into_values().map(Tree::value).collect()),
        }
    }
}

/// The item of a projection response (`{ordinal: value}`) rebuilt along `paths`.
pub fn projected_item(
    values: Vec<(usize, AttributeValue)>,
    paths: &[Vec<PathElement>],
) -> Result<Item, DaxError> {
    let mut root = Tree::Map(Default::default());
    for (ord, v) in values {
        let path = paths
            .get(ord)
            .ok_or_else(|| malformed(format!("unknown projection ordinal {ord}")))?;
        root.insert(path, v)?;
    }
    match root.value() {
        AttributeValue::M(m) => Ok(m),
        _ => Err(malformed("projected item is not a map")),
    }
}

/// The value at `path` in `item`, if there (the test server projects full items).
pub fn value_at<'i>(item: &'i Item, path: &[PathElement]) -> Option<&'i AttributeValue> {
    let (PathElement::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut v = item.get(first)?;
    for e in rest {
        v = match (v, e) {
            (AttributeValue::M(m), PathElement::Key(k)) => m.get(k)?,
            (AttributeValue::L(l), PathElement::Index(i)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// `list id, {ordinal: value, ...}` as UpdateItem returns updated attributes.
pub fn decode_partial(bytes: &[u8]) -> Result<RawItem, DaxError> {
    let all = cbor::decode_all(bytes)?;
    let (Some(id), Some(Value::Map(m)), 2) = (all.first(), all.get(1), all.len()) else {
        return Err(malformed("updated attributes are not a list id and a map"));
    };
    let list_id = id
        .as_int()
        .and_then(|i| i64::try_from(i).ok())
        .ok_or_else(|| malformed("attribute list id is not an integer"))?;
    let mut values = Vec::with_capacity(m.len());
    for (k, v) in m {
        let ord = k
            .as_int()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| malformed("attribute ordinal"))?;
        values.push((ord, decode_attribute_value(v)?));
    }
    Ok(RawItem::Partial { list_id, values })
}

/// Encodes updated attributes as [`decode_partial`] reads them (the test server).
pub fn encode_partial(
    values: &[(usize, &AttributeValue)],
    list_id: i64,
) -> Result<Vec<u8>, DaxError> {
    let mut e = Encoder::new();
    e.int(list_id).map(values.len());
    for (ord, v) in values {
        e.int(*ord as i64);
        encode_attribute_value(&mut e, v)?;
    }
    Ok(e.into_bytes())
}

/// A normal operation's response (GetItem, PutItem, DeleteItem, Query).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawResponse {
    pub item: Option<RawItem>,
    pub attributes: Option<RawItem>,
    pub items: Option<Vec<RawItem>>,
    pub count: Option<i64>,
    pub scanned_count: Option<i64>,
    pub last_evaluated_key: Option<Item>,
}

fn raw_item(
    v: &Value,
    request_key: Option<&Item>,
    schema: &KeySchema,
) -> Result<RawItem, DaxError> {
    match v {
        Value::Bytes(b) => Ok(RawItem::Stream {
            key: request_key.cloned().unwrap_or_default(),
            values: decode_values(b)?,
        }),
        Value::Array(a) if a.len() == 2 => {
            let kb = a[0]
                .as_bytes()
                .ok_or_else(|| malformed("item key is not bytes"))?;
            let vb = a[1]
                .as_bytes()
                .ok_or_else(|| malformed("item value is not bytes"))?;
            Ok(RawItem::Stream {
                key: decode_key(kb, schema)?,
                values: decode_values(vb)?,
            })
        }
        Value::Map(m) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let ord = k
                    .as_int()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| malformed("projection ordinal"))?;
                out.push((ord, decode_attribute_value(v)?));
            }
            Ok(RawItem::Projected(out))
        }
        other => Err(malformed(format!("unknown item form {other:?}"))),
    }
}

/// Decodes the body after a success header. `request_key`: the key the request named
/// (GetItem, DeleteItem) or the item's key (PutItem), re-inserted into returned items.
/// `partial_attributes`: the request asked for `UPDATED_OLD`/`UPDATED_NEW`, whose
/// attributes come by ordinal ([`RawItem::Partial`]).
pub fn decode_normal(
    v: &Value,
    request_key: Option<&Item>,
    schema: &KeySchema,
    partial_attributes: bool,
) -> Result<RawResponse, DaxError> {
    let mut out = RawResponse::default();
    let entries = match v {
        Value::Null => return Ok(out),
        Value::Map(m) => m,
        _ => return Err(malformed("response is neither null nor a map")),
    };
    for (k, v) in entries {
        let k = k.as_int().ok_or_else(|| malformed("response key"))?;
        let int = || v.as_int().and_then(|i| i64::try_from(i).ok());
        match k as i64 {
            response::ITEM if *v != Value::Null => {
                out.item = Some(raw_item(v, request_key, schema)?);
            }
            response::ATTRIBUTES if *v != Value::Null => {
                out.attributes = Some(match v {
                    Value::Bytes(b) if partial_attributes => decode_partial(b)?,
                    _ => raw_item(v, request_key, schema)?,
                });
            }
            response::ITEMS => {
                let a = match v {
                    Value::Array(a) => a,
                    _ => return Err(malformed("Items is not an array")),
                };
                out.items = Some(
                    a.iter()
                        .map(|i| raw_item(i, None, schema))
                        .collect::<Result<_, _>>()?,
                );
            }
            response::COUNT => out.count = int(),
            response::SCANNED_COUNT => out.scanned_count = int(),
            response::LAST_EVALUATED_KEY => {
                let b = v
                    .as_bytes()
                    .ok_or_else(|| malformed("LastEvaluatedKey is not bytes"))?;
                out.last_evaluated_key = Some(decode_key(b, schema)?);
            }
            response::CONSUMED_CAPACITY => {}
            _ => {}
        }
    }
    Ok(out)
}

/// One table of a BatchGetItem request.
#[derive(Debug, Clone)]
pub struct BatchGetTable<'a> {
    pub name: &'a str,
    pub schema: &'a KeySchema,
    pub consistent_read: bool,
    /// The table's projection and its names (compiled as for GetItem).
    pub projection: Option<&'a str>,
    pub names: Option<&'a HashMap<String, String>>,
    pub keys: &'a [Item],
}

/// BatchGetItem (Python `Stubs.write_batchGetItem_N697851100_1` and
/// `AttributeValueEncoder.encode_batchGetItem_..._getItemKeys_direct`): a map of
/// table name (text) to `[consistent read, projection or null, [key bytes...]]`,
/// then the optional parameters (`ReturnConsumedCapacity` only). Tables in the
/// order given (the official client writes its dict's order).
pub fn encode_batch_get_item(tables: &[BatchGetTable<'_>]) -> Result<Vec<u8>, DaxError> {
    if tables.is_empty() {
        return Err(invalid("RequestItems must not be empty"));
    }
    let mut e = Encoder::new();
    header(&mut e, method::BATCH_GET_ITEM);
    e.map(tables.len());
    for t in tables {
        e.text(t.name).array(3).bool(t.consistent_read);
        match t.projection {
            Some(p) => {
                let compiled = compile(&Expressions {
                    projection: Some(p),
                    names: t.names,
                    ..Default::default()
                })?;
                e.bytes(compiled.projection.as_deref().unwrap_or_default())
            }
            None => e.null(),
        };
        e.array(t.keys.len());
        let mut seen = std::collections::HashSet::new();
        for k in t.keys {
            let kb = encode_key(k, t.schema)?;
            if !seen.insert(kb.clone()) {
                return Err(invalid("Provided list of item keys contains duplicates"));
            }
            e.bytes(&kb);
        }
    }
    e.map_stream();
    e.int(param::RETURN_CONSUMED_CAPACITY).int(0);
    e.brk();
    Ok(e.into_bytes())
}

/// One write of a BatchWriteItem request.
#[derive(Debug, Clone)]
pub enum BatchWrite<'a> {
    /// The item and its values (attribute list id and values, [`encode_values`]).
    Put {
        item: &'a Item,
        values: Vec<u8>,
    },
    Delete {
        key: &'a Item,
    },
}

#[derive(Debug, Clone)]
pub struct BatchWriteTable<'a> {
    pub name: &'a str,
    pub schema: &'a KeySchema,
    pub writes: Vec<BatchWrite<'a>>,
}

/// DynamoDB's limit of write requests per BatchWriteItem.
pub const MAX_WRITE_BATCH_SIZE: usize = 25;

/// BatchWriteItem (Python `Stubs.write_batchWriteItem_116217951_1` and
/// `encode_batchWriteItem_..._keyValuesByTable_direct`): a map of table name
/// (text) to a flat array of `key bytes, value bytes` (a put) or `key bytes, null`
/// (a delete), then the optional parameters. Refused as the official client
/// refuses: more than 25 writes, a table without writes, a key twice in a table.
pub fn encode_batch_write_item(
    tables: &[BatchWriteTable<'_>],
    return_item_collection_metrics: Option<&str>,
) -> Result<Vec<u8>, DaxError> {
    let mut e = Encoder::new();
    header(&mut e, method::BATCH_WRITE_ITEM);
    e.map(tables.len());
    let mut total = 0;
    for t in tables {
        total += t.writes.len();
        if total > MAX_WRITE_BATCH_SIZE {
            return Err(invalid(format!(
                "Batch size should be less than {MAX_WRITE_BATCH_SIZE}, got {total}"
            )));
        }
        if t.writes.is_empty() {
            return Err(invalid(format!(
                "No write requests provided for {}",
                t.name
            )));
        }
        e.text(t.name).array(t.writes.len() * 2);
        let mut seen = std::collections::HashSet::new();
        for w in &t.writes {
            let (key, values) = match w {
                BatchWrite::Put { item, values } => (*item, Some(values)),
                BatchWrite::Delete { key } => (*key, None),
            };
            let kb = encode_key(key, t.schema)?;
            if !seen.insert(kb.clone()) {
                return Err(invalid("Provided list of item keys contains duplicates"));
            }
            e.bytes(&kb);
            match values {
                Some(v) => e.bytes(v),
                None => e.null(),
            };
        }
    }
    if total == 0 {
        return Err(invalid("No write requests provided"));
    }
    e.map_stream();
    e.int(param::RETURN_CONSUMED_CAPACITY).int(0);
    if let Some(m) = return_item_collection_metrics {
        let code = match m {
            "NONE" => 0,
            "SIZE" => 1,
            other => {
                return Err(invalid(format!(
                    "unknown ReturnItemCollectionMetrics {other}"
                )))
            }
        };
        e.int(param::RETURN_ITEM_COLLECTION_METRICS).int(code);
    }
    e.brk();
    Ok(e.into_bytes())
}

fn table_schema<'s>(
    schemas: &'s HashMap<String, KeySchema>,
    name: &Value,
) -> Result<(String, &'s KeySchema), DaxError> {
    let name = name
        .as_text()
        .ok_or_else(|| malformed("table name is not text"))?;
    let schema = schemas
        .get(name)
        .ok_or_else(|| malformed(format!("response names table {name} not in the request")))?;
    Ok((name.to_string(), schema))
}

fn pairs(v: &Value) -> Result<&[Value], DaxError> {
    match v {
        Value::Array(a) if a.len() % 2 == 0 => Ok(a),
        _ => Err(malformed("expected an array of key/value pairs")),
    }
}

/// A BatchGetItem response before attribute lists are resolved, tables and items
/// in the server's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawBatchGet {
    pub responses: Vec<(String, Vec<RawItem>)>,
    pub unprocessed: Vec<(String, Vec<Item>)>,
}

/// The values after the success header: `[responses, unprocessed keys]`, then the
/// consumed capacities (ignored: this client sends `ReturnConsumedCapacity` NONE).
/// Python `Assemblers.batchGetItem_N697851100_1`, Go `decodeBatchGetItemOutput`.
/// `projected`: the tables whose request had a projection; their items come as
/// `{ordinal: value}` maps, one per item, not as key/value pairs.
pub fn decode_batch_get(
    v: &Value,
    schemas: &HashMap<String, KeySchema>,
    projected: &[&str],
) -> Result<RawBatchGet, DaxError> {
    let mut out = RawBatchGet::default();
    let parts = match v {
        Value::Null => return Ok(out),
        Value::Array(a) if a.len() == 2 => a,
        _ => {
            return Err(malformed(
                "BatchGetItem response is not [responses, unprocessed]",
            ))
        }
    };
    let (Value::Map(responses), Value::Map(unprocessed)) = (&parts[0], &parts[1]) else {
        return Err(malformed("BatchGetItem responses are not maps"));
    };
    for (name, items) in responses {
        let (name, schema) = table_schema(schemas, name)?;
        let mut list = Vec::new();
        if projected.contains(&name.as_str()) {
            let Value::Array(items) = items else {
                return Err(malformed("projected items are not an array"));
            };
            for i in items {
                list.push(raw_item(i, None, schema)?);
            }
            out.responses.push((name, list));
            continue;
        }
        for kv in pairs(items)?.chunks(2) {
            let kb = kv[0]
                .as_bytes()
                .ok_or_else(|| malformed("item key is not bytes"))?;
            let vb = kv[1]
                .as_bytes()
                .ok_or_else(|| malformed("item value is not bytes"))?;
            list.push(RawItem::Stream {
                key: decode_key(kb, schema)?,
                values: decode_values(vb)?,
            });
        }
        out.responses.push((name, list));
    }
    for (name, keys) in unprocessed {
        let (name, schema) = table_schema(schemas, name)?;
        let Value::Array(keys) = keys else {
            return Err(malformed("unprocessed keys are not an array"));
        };
        let keys = keys
            .iter()
            .map(|k| {
                k.as_bytes()
                    .ok_or_else(|| malformed("unprocessed key is not bytes"))
                    .and_then(|b| decode_key(b, schema))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !keys.is_empty() {
            out.unprocessed.push((name, keys));
        }
    }
    Ok(out)
}

/// An unprocessed write of a BatchWriteItem response.
#[derive(Debug, Clone, PartialEq)]
pub enum RawWrite {
    Put { key: Item, values: StreamItem },
    Delete { key: Item },
}

/// The first value after the success header: unprocessed writes by table (then
/// consumed capacities and item collection metrics, not asked for).
/// Python `Assemblers.batchWriteItem_116217951_1`, Go `decodeBatchWriteItemOutput`.
pub fn decode_batch_write(
    v: &Value,
    schemas: &HashMap<String, KeySchema>,
) -> Result<Vec<(String, Vec<RawWrite>)>, DaxError> {
    let tables = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Map(m) => m,
        _ => return Err(malformed("BatchWriteItem response is not a map")),
    };
    let mut out = Vec::new();
    for (name, writes) in tables {
        let (name, schema) = table_schema(schemas, name)?;
        let mut list = Vec::new();
        for kv in pairs(writes)?.chunks(2) {
            let kb = kv[0]
                .as_bytes()
                .ok_or_else(|| malformed("item key is not bytes"))?;
            let key = decode_key(kb, schema)?;
            list.push(match &kv[1] {
                Value::Null => RawWrite::Delete { key },
                Value::Bytes(vb) => RawWrite::Put {
                    key,
                    values: decode_values(vb)?,
                },
                _ => return Err(malformed("unprocessed write value")),
            });
        }
        if !list.is_empty() {
            out.push((name, list));
        }
    }
    Ok(out)
}

/// One endpoint of the cluster, from the `endpoints` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: i64,
    pub hostname: String,
    pub address: std::net::IpAddr,
    pub port: u16,
    /// 1: the primary (leader); 2: a replica.
    pub role: i64,
    pub az: String,
}

pub const ROLE_LEADER: i64 = 1;

pub fn decode_endpoints(v: &Value) -> Result<Vec<Endpoint>, DaxError> {
    let list = match v {
        Value::Array(a) => a,
        _ => return Err(malformed("endpoints is not an array")),
    };
    let mut out = Vec::new();
    for ep in list {
        let m = match ep {
            Value::Map(m) => m,
            _ => return Err(malformed("endpoint is not a map")),
        };
        let field = |i: i128| {
            m.iter()
                .find(|(k, _)| k.as_int() == Some(i))
                .map(|(_, v)| v)
        };
        let address = match field(2).and_then(Value::as_bytes) {
            Some(b) if b.len() == 4 => std::net::IpAddr::from([b[0], b[1], b[2], b[3]]),
            Some(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                std::net::IpAddr::from(a)
            }
            _ => return Err(malformed("endpoint address")),
        };
        out.push(Endpoint {
            node: field(0).and_then(Value::as_int).unwrap_or(0) as i64,
            hostname: field(1)
                .and_then(Value::as_text)
                .unwrap_or_default()
                .to_string(),
            address,
            port: field(3)
                .and_then(Value::as_int)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| malformed("endpoint port"))?,
            role: field(4).and_then(Value::as_int).unwrap_or(0) as i64,
            az: field(5)
                .and_then(Value::as_text)
                .unwrap_or_default()
                .to_string(),
        });
    }
    Ok(out)
}

pub fn encode_endpoints_response(e: &mut Encoder, eps: &[Endpoint]) {
    e.array(eps.len());
    for ep in eps {
        let addr = match ep.address {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        e.map(6);
        e.int(0).int(ep.node);
        e.int(1).text(&ep.hostname);
        e.int(2).bytes(&addr);
        e.int(3).int(ep.port as i64);
        e.int(4).int(ep.role);
        e.int(5).text(&ep.az);
    }
}

pub fn decode_key_schema(v: &Value) -> Result<KeySchema, DaxError> {
    let m = match v {
        Value::Map(m) => m,
        _ => return Err(malformed("key schema is not a map")),
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let name = k.as_text().ok_or_else(|| malformed("key name"))?;
        let t = v
            .as_text()
            .and_then(ScalarType::parse)
            .ok_or_else(|| malformed("key type"))?;
        out.push((name.to_string(), t));
    }
    if out.is_empty() || out.len() > 2 {
        return Err(malformed("key schema has neither one nor two attributes"));
    }
    Ok(KeySchema(out))
}

pub fn decode_string_list(v: &Value) -> Result<Vec<String>, DaxError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_text().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("attribute list holds a non-string")),
        _ => Err(malformed("attribute list is not an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> KeySchema {
        KeySchema(vec![("pk".into(), ScalarType::S)])
    }

    fn key(k: &str) -> Item {
        HashMap::from([("pk".to_string(), AttributeValue::S(k.into()))])
    }

    #[test]
    fn batch_requests_are_refused_as_the_official_client_refuses_them() {
        let s = schema();
        let keys = [key("a"), key("a")];
        let t = BatchGetTable {
            name: "t",
            schema: &s,
            consistent_read: false,
            projection: None,
            names: None,
            keys: &keys,
        };
        assert!(encode_batch_get_item(&[t]).is_err_and(|e| e.to_string().contains("duplicates")));
        assert!(encode_batch_get_item(&[]).is_err());

        let many: Vec<Item> = (0..26).map(|i| key(&i.to_string())).collect();
        let t = BatchWriteTable {
            name: "t",
            schema: &s,
            writes: many.iter().map(|k| BatchWrite::Delete { key: k }).collect(),
        };
        assert!(encode_batch_write_item(&[t], None).is_err_and(|e| e.to_string().contains("25")));
        let t = BatchWriteTable {
            name: "t",
            schema: &s,
            writes: vec![],
        };
        assert!(encode_batch_write_item(&[t], None).is_err());
        let k = key("a");
        let t = BatchWriteTable {
            name: "t",
            schema: &s,
            writes: vec![
                BatchWrite::Delete { key: &k },
                BatchWrite::Delete { key: &k },
            ],
        };
        assert!(encode_batch_write_item(&[t], None)
            .is_err_and(|e| e.to_string().contains("duplicates")));
    }

    #[test]
    fn projected_items_are_rebuilt_along_their_paths() {
        let names = HashMap::from([("#n".to_string(), "name".to_string())]);
        let paths = projection_paths("#n, a.b[3].c, a.b[1].c, l[2]", Some(&names)).expect("paths");
        assert_eq!(paths[0], vec![PathElement::Key("name".into())]);
        let s = |x: &str| AttributeValue::S(x.into());
        let item = projected_item(
            vec![(0, s("n")), (1, s("three")), (2, s("one")), (3, s("two"))],
            &paths,
        )
        .expect("item");
        let c = |x: &str| AttributeValue::M(HashMap::from([("c".to_string(), s(x))]));
        assert_eq!(item["name"], s("n"));
        assert_eq!(
            item["a"],
            AttributeValue::M(HashMap::from([(
                "b".to_string(),
                AttributeValue::L(vec![c("one"), c("three")])
            )]))
        );
        assert_eq!(item["l"], AttributeValue::L(vec![s("two")]));
        assert!(projected_item(vec![(9, s("x"))], &paths).is_err());
        assert!(projection_paths("a[", None).is_err());
        assert!(projection_paths("[1]", None).is_err());
        let full: Item =
            HashMap::from([("l".to_string(), AttributeValue::L(vec![s("x"), s("y")]))]);
        assert_eq!(value_at(&full, &paths[3]), None);
        assert_eq!(
            value_at(
                &full,
                &[PathElement::Key("l".into()), PathElement::Index(1)]
            ),
            Some(&s("y"))
        );
    }

    #[test]
    fn updated_attributes_come_by_ordinal() {
        let v = AttributeValue::N("3".into());
        let bytes = encode_partial(&[(1, &v)], 7).expect("encode");
        assert_eq!(
            decode_partial(&bytes).expect("decode"),
            RawItem::Partial {
                list_id: 7,
                values: vec![(1, v)]
            }
        );
        // A plain value stream is not a partial item.
        let plain = encode_values(&key("a"), &["pk".to_string()], 2).expect("values");
        assert!(decode_partial(&plain).is_err());
    }
}
