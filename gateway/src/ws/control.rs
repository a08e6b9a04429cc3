//! The control messages of Binance's market streams: `SUBSCRIBE`,
//! `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY` and `GET_PROPERTY`,
//! read as the doc's "Error Messages" table says, with its codes:
//! 0 unknown property, 1 a value of the wrong type, 2 an invalid request,
//! 3 invalid JSON. Answers are `{"result":..,"id":..}` or
//! `{"error":{"code":..,"msg":..},"id":..}`.

use serde_json::Value;

/// The methods, in the order Binance's message lists them.
const METHODS: &str =
    "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`";

/// Longest string id Binance accepts.
const MAX_ID_CHARS: usize = 36;

/// A valid control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// Add these streams.
    Subscribe(Vec<String>),
    /// Remove these streams.
    Unsubscribe(Vec<String>),
    /// The streams subscribed.
    List,
    /// Set `combined`.
    SetCombined(bool),
    /// Read `combined`.
    GetCombined,
}

/// A refused request: Binance's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// 0, 1, 2 or 3.
    pub(super) code: u8,
    /// What was wrong.
    pub(super) msg: String,
}

impl Refusal {
    /// Code 2, `Invalid request: <what>`.
    pub(super) fn invalid(what: impl std::fmt::Display) -> Self {
        Refusal {
            code: 2,
            msg: format!("Invalid request: {what}"),
        }
    }
}

/// `{"result": result, "id": id}`, in Binance's field order.
pub(super) fn answer(id: &Value, result: &Value) -> String {
    format!(r#"{{"result":{result},"id":{id}}}"#)
}

/// `{"error": {"code", "msg"}, "id": id}`, in Binance's field order.
pub(super) fn refusal(id: &Value, r: &Refusal) -> String {
    let msg = Value::from(r.msg.as_str());
    format!(r#"{{"error":{{"code":{},"msg":{msg}}},"id":{id}}}"#, r.code)
}

/// Whether `id` is one Binance accepts: a 64-bit integer, up to 36
/// letters and digits, or null.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::Null => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::String(s) => {
            !s.is_empty() && s.len() <= MAX_ID_CHARS && s.chars().all(|c| c.is_ascii_alphanumeric())
        }
        _ => false,
    }
}

/// Reads one client message: its id (null when it has none or the
/// message is not readable) and the request, or why it is refused.
pub(super) fn parse(text: &str) -> (Value, Result<Request, Refusal>) {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let r = Refusal {
                code: 3,
                msg: format!("Invalid JSON: {e}"),
            };
            return (Value::Null, Err(r));
        }
    };
    let Some(obj) = msg.as_object() else {
        return (Value::Null, Err(Refusal::invalid("expected a JSON object")));
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let method = match obj.get("method") {
        None => return (id, Err(Refusal::invalid("missing field `method`"))),
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return (id, Err(Refusal::invalid("method must be a string"))),
    };
    if !obj.contains_key("id") || !valid_id(&id) {
        return (
            Value::Null,
            Err(Refusal::invalid("request ID must be an unsigned integer")),
        );
    }
    let params = obj.get("params").unwrap_or(&Value::Null);
    (id.clone(), request(method, params))
}

/// The request `method` with `params` makes.
fn request(method: &str, params: &Value) -> Result<Request, Refusal> {
    let list = match params {
        Value::Null => &Vec::new(),
        Value::Array(a) => a,
        _ => return Err(Refusal::invalid("params must be a list")),
    };
    match method {
        "SUBSCRIBE" => names(list).map(Request::Subscribe),
        "UNSUBSCRIBE" => names(list).map(Request::Unsubscribe),
        "LIST_SUBSCRIPTIONS" if list.is_empty() => Ok(Request::List),
        "SET_PROPERTY" => {
            let [name, value] = list.as_slice() else {
                return Err(property_count(list.len(), 2));
            };
            property(name)?;
            match value {
                Value::Bool(b) => Ok(Request::SetCombined(*b)),
                _ => Err(Refusal {
                    code: 1,
                    msg: "Invalid value type: expected Boolean".into(),
                }),
            }
        }
        "GET_PROPERTY" => {
            let [name] = list.as_slice() else {
                return Err(property_count(list.len(), 1));
            };
            property(name).map(|()| Request::GetCombined)
        }
        "LIST_SUBSCRIPTIONS" => Err(Refusal::invalid("too many parameters")),
        other => Err(Refusal::invalid(format!(
            "unknown variant `{other}`, expected one of {METHODS}"
        ))),
    }
}

/// Too few parameters means the property name is missing.
fn property_count(got: usize, want: usize) -> Refusal {
    if got > want {
        Refusal::invalid("too many parameters")
    } else {
        Refusal::invalid("property name must be a string")
    }
}

/// The one property there is: `combined`.
fn property(name: &Value) -> Result<(), Refusal> {
    match name.as_str() {
        None => Err(Refusal::invalid("property name must be a string")),
        Some("combined") => Ok(()),
        Some(_) => Err(Refusal {
            code: 0,
            msg: "Unknown property".into(),
        }),
    }
}

/// Stream names: a list of strings.
fn names(list: &[Value]) -> Result<Vec<String>, Refusal> {
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| Refusal::invalid("stream names must be strings"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(text: &str) -> (Value, Result<Request, Refusal>) {
        parse(text)
    }

    fn code_of(text: &str) -> (u8, String) {
        let r = parsed(text).1.unwrap_err();
        (r.code, r.msg)
    }

    #[test]
    fn the_five_methods_read_as_binances() {
        let ok = |t: &str| parsed(t).1.unwrap();
        assert_eq!(
            ok(r#"{"method":"SUBSCRIBE","params":["btceur@trade","btceur@depth"],"id":1}"#),
            Request::Subscribe(vec!["btceur@trade".into(), "btceur@depth".into()])
        );
        assert_eq!(
            ok(r#"{"method":"UNSUBSCRIBE","params":["btceur@depth"],"id":312}"#),
            Request::Unsubscribe(vec!["btceur@depth".into()])
        );
        assert_eq!(
            ok(r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#),
            Request::List
        );
        assert_eq!(
            ok(r#"{"method":"SET_PROPERTY","params":["combined",true],"id":5}"#),
            Request::SetCombined(true)
        );
        assert_eq!(
            ok(r#"{"method":"GET_PROPERTY","params":["combined"],"id":2}"#),
            Request::GetCombined
        );
    }

    #[test]
    fn ids_are_integers_short_alphanumeric_strings_or_null() {
        for id in ["1", "-5", "9223372036854775807", "\"abc123\"", "null"] {
            let text = format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#);
            let (got, r) = parsed(&text);
            assert_eq!(r, Ok(Request::List), "{id}");
            assert_eq!(got, serde_json::from_str::<Value>(id).unwrap());
        }
        let long = format!("\"{}\"", "a".repeat(37));
        for id in ["1.5", "\"a-b\"", "\"\"", "[]", "{}", "true", long.as_str()] {
            let text = format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#);
            let (got, r) = parsed(&text);
            assert_eq!(got, Value::Null, "{id}");
            assert_eq!(
                r.unwrap_err(),
                Refusal::invalid("request ID must be an unsigned integer")
            );
        }
        // No id at all is refused the same way.
        let (_, r) = parsed(r#"{"method":"LIST_SUBSCRIPTIONS"}"#);
        assert_eq!(r.unwrap_err().code, 2);
    }

    #[test]
    fn bad_requests_get_the_docs_codes_and_messages() {
        let invalid = |m: &str| (2, format!("Invalid request: {m}"));
        assert_eq!(
            code_of(r#"{"method":"SET_PROPERTY","params":["foo",true],"id":1}"#),
            (0, "Unknown property".into())
        );
        assert_eq!(
            code_of(r#"{"method":"GET_PROPERTY","params":["foo"],"id":1}"#),
            (0, "Unknown property".into())
        );
        assert_eq!(
            code_of(r#"{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}"#),
            (1, "Invalid value type: expected Boolean".into())
        );
        assert_eq!(
            code_of(r#"{"method":"SET_PROPERTY","params":[5,true],"id":1}"#),
            invalid("property name must be a string")
        );
        assert_eq!(
            code_of(r#"{"method":"GET_PROPERTY","params":[],"id":1}"#),
            invalid("property name must be a string")
        );
        assert_eq!(
            code_of(r#"{"method":"SET_PROPERTY","params":["combined",true,1],"id":1}"#),
            invalid("too many parameters")
        );
        assert_eq!(
            code_of(r#"{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":1}"#),
            invalid("too many parameters")
        );
        assert_eq!(
            code_of(r#"{"method":"SUBSCRIB","params":[],"id":1}"#),
            invalid(&format!(
                "unknown variant `SUBSCRIB`, expected one of {METHODS}"
            ))
        );
        assert_eq!(
            code_of(r#"{"params":[],"id":1}"#),
            invalid("missing field `method`")
        );
        assert_eq!(
            code_of(r#"{"method":"SUBSCRIBE","params":[1],"id":1}"#),
            invalid("stream names must be strings")
        );
        assert_eq!(
            code_of(r#"{"method":"SUBSCRIBE","params":"btceur@trade","id":1}"#),
            invalid("params must be a list")
        );
        let (code, msg) = code_of("{nope");
        assert_eq!(code, 3);
        assert!(msg.starts_with("Invalid JSON: "), "{msg}");
    }

    #[test]
    fn answers_are_binances_shapes() {
        assert_eq!(answer(&json!(1), &Value::Null), r#"{"result":null,"id":1}"#);
        assert_eq!(
            answer(&json!("a1"), &json!(["btceur@trade"])),
            r#"{"result":["btceur@trade"],"id":"a1"}"#
        );
        assert_eq!(
            refusal(
                &json!(5),
                &Refusal {
                    code: 0,
                    msg: "Unknown property".into()
                }
            ),
            r#"{"error":{"code":0,"msg":"Unknown property"},"id":5}"#
        );
    }
}
