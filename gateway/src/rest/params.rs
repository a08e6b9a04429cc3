//! A request's parameters as Binance takes them: in the query string, in
//! an `application/x-www-form-urlencoded` body, or split between the two,
//! parsed into one typed struct per endpoint. `timestamp`, `recvWindow`
//! and `signature` belong to the signature check and are dropped here.

use std::borrow::Cow;

use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::errors::{ApiError, code};

/// Parameters every signed request carries, read by the signature check.
const SIGNING_PARAMS: [&str; 3] = ["timestamp", "recvWindow", "signature"];

/// The form-encoded body of a request, or empty. A body in another media
/// type is refused: Binance's clients send forms, and a JSON body would
/// otherwise be ignored silently.
pub(crate) fn form_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
    if body.is_empty() {
        return Ok("");
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.is_empty() && !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            code::BAD_CONTENT_TYPE,
            "Parameters go in the query string or an application/x-www-form-urlencoded body.",
        ));
    }
    std::str::from_utf8(body)
        .map_err(|_| ApiError::new(code::ILLEGAL_CHARS, "The body is not UTF-8."))
}

/// Parses the parameters of `query` and `form` into `T`. Empty values
/// count as not sent, as Binance counts them.
pub(crate) fn parse<T: DeserializeOwned>(query: &str, form: &str) -> Result<T, ApiError> {
    let merged = merged(query, form);
    serde_urlencoded::from_str(&merged).map_err(|e| param_error(&e.to_string()))
}

/// `query` and `form` as one query string, without the signing parameters
/// and without empty values.
pub(crate) fn merged<'a>(query: &'a str, form: &'a str) -> Cow<'a, str> {
    let keep = |kv: &&str| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        !kv.is_empty() && !v.is_empty() && !SIGNING_PARAMS.contains(&k)
    };
    let parts = || query.split('&').chain(form.split('&'));
    if form.is_empty() && query.split('&').all(|kv| keep(&kv)) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = parts().filter(keep).collect();
    Cow::Owned(kept.join("&"))
}

/// `params` without the parameters named in `names`.
pub(crate) fn without(params: &str, names: &[&str]) -> String {
    let kept: Vec<&str> = params
        .split('&')
        .filter(|kv| !names.contains(&kv.split_once('=').map_or(*kv, |(k, _)| k)))
        .collect();
    kept.join("&")
}

/// Maps a serde message to Binance's code for it.
pub(crate) fn param_error(msg: &str) -> ApiError {
    let field = msg.split('`').nth(1).unwrap_or("");
    if msg.contains("missing field") {
        return ApiError::new(
            code::MISSING_PARAM,
            format!("Mandatory parameter '{field}' was not sent, was empty/null, or malformed."),
        );
    }
    if msg.contains("unknown field") {
        return ApiError::new(
            code::UNREAD_PARAMS,
            format!(
                "Not all sent parameters were read; '{field}' is not a parameter of this endpoint."
            ),
        );
    }
    if msg.contains("duplicate field") {
        return ApiError::new(
            code::DUPLICATE_PARAM,
            format!("Duplicate values for a parameter detected: '{field}'."),
        );
    }
    let code = if msg.contains("number too large") {
        code::BAD_NUMBER
    } else {
        code::ILLEGAL_CHARS
    };
    ApiError::new(
        code,
        format!("Illegal characters found in a parameter: {msg}."),
    )
}

/// A parameter that must not come with the others sent.
pub(crate) fn not_required(name: &str) -> ApiError {
    ApiError::new(
        code::PARAM_NOT_REQUIRED,
        format!("Parameter '{name}' sent when not required."),
    )
}

/// A mandatory parameter that was not sent.
pub(crate) fn missing(name: &str) -> ApiError {
    ApiError::new(
        code::MISSING_PARAM,
        format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct P {
        symbol: String,
        order_id: Option<u64>,
    }

    #[test]
    fn parameters_come_from_the_query_and_the_form_alike() {
        let want = P {
            symbol: "BTCEUR".into(),
            order_id: Some(7),
        };
        assert_eq!(parse::<P>("symbol=BTCEUR&orderId=7", ""), Ok(want));
        let split = parse::<P>("symbol=BTCEUR&timestamp=1", "orderId=7&signature=ab");
        assert_eq!(split.map(|p| p.order_id), Ok(Some(7)));
        let empty = parse::<P>("symbol=BTCEUR&orderId=", "");
        assert_eq!(empty.map(|p| p.order_id), Ok(None));
    }

    #[test]
    fn each_fault_has_its_binance_code() {
        let code = |q: &str, f: &str| parse::<P>(q, f).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code("orderId=1", ""), Err(code::MISSING_PARAM));
        assert_eq!(code("symbol=", ""), Err(code::MISSING_PARAM));
        assert_eq!(code("symbol=A&x=1", ""), Err(code::UNREAD_PARAMS));
        assert_eq!(code("symbol=A", "symbol=B"), Err(code::DUPLICATE_PARAM));
        assert_eq!(code("symbol=A&orderId=x", ""), Err(code::ILLEGAL_CHARS));
    }

    #[test]
    fn only_forms_are_bodies() {
        let mut h = HeaderMap::new();
        assert_eq!(form_body(&h, b"a=1"), Ok("a=1"));
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(
            form_body(&h, b"{}").map_err(|e| e.code),
            Err(code::BAD_CONTENT_TYPE)
        );
        assert_eq!(form_body(&h, b""), Ok(""));
        let form = "application/x-www-form-urlencoded; charset=utf-8";
        h.insert(header::CONTENT_TYPE, form.parse().unwrap());
        assert_eq!(form_body(&h, b"a=1"), Ok("a=1"));
    }
}
