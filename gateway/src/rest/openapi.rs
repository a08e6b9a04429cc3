//! The OpenAPI 3.1 description of everything the router serves, built from
//! the handlers themselves: each handler carries its `#[utoipa::path]`
//! (method, path, parameters, answers), the parameter structs derive
//! `IntoParams` or `ToSchema`, the answer structs `ToSchema`, and answers
//! built with `json!` have a schema beside the code that builds them. What
//! every route shares because of the layers it passes (head limits,
//! request weights, signatures) is added here, from the same functions the
//! layers call. Served at `GET /api/openapi.json`, built once per process.
//!
//! The tests check the document against the router: every route it serves
//! is described and every described operation is served, every described
//! parameter is one its handler reads, and every documented enumeration
//! is one its parser accepts.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use proto::{
    ClientOrderId, NewOrder, OrderId, OrderSize, OrderType, PairConfig, Price, Qty, Side,
    TimeInForce,
};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use super::App;
use crate::auth::{ADMIN_KEY_HEADER, API_KEY_HEADER, MAX_RECV_WINDOW_MS};
use crate::usage::{ORDER_COUNT_1D, ORDER_COUNT_10S, USED_WEIGHT_1M};

/// What the document says before the operations.
const DESCRIPTION: &str = "Binance's Spot REST API (`/api/v3`), field by field, over this \
exchange's engine; the operators' API (`/admin/v1`); health, readiness and metrics.\n\n\
Parameters go in the query string or in an `application/x-www-form-urlencoded` body (never \
JSON; the operators' API takes JSON bodies). An empty value counts as not sent; a parameter \
an endpoint does not read is refused (-1104), one sent twice too (-1101).\n\n\
Signed endpoints take the API key in `X-MBX-APIKEY` (operators: `X-ADMIN-KEY`), a `timestamp` \
in Unix milliseconds no more than 1 s ahead of the server and no older than `recvWindow` \
(default 5,000 ms, at most 60,000), and `signature`: the hex HMAC-SHA256, keyed by the key's \
secret, of the query string followed by the body with nothing between them, each without the \
`signature` parameter, which goes in either.\n\n\
Every error answer is `{\"code\": <negative integer>, \"msg\": <text>}`. A path that does not \
exist answers 404 (-1040), a method a path does not serve 405 (-1020) with `Allow`.\n\n\
Request weights per IP and minute (Binance's) count every `/api/v3` request; every such \
answer carries `X-MBX-USED-WEIGHT-1M`, and order answers `X-MBX-ORDER-COUNT-10S` and \
`X-MBX-ORDER-COUNT-1D`. Refusals for a limit are 429 (or 418 for an IP that kept going) \
with `Retry-After`.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Spot exchange REST API", description = DESCRIPTION),
    paths(
        super::general::ping,
        super::general::time,
        super::general::exchange_info,
        super::public::depth,
        super::public::trades,
        super::public::historical_trades,
        super::public::agg_trades,
        super::public::klines,
        super::public::ui_klines,
        super::public::tickers::avg_price,
        super::public::tickers::day_ticker,
        super::public::tickers::rolling_ticker,
        super::public::price_ticker,
        super::public::book_ticker,
        super::trading::new_order,
        super::trading::test_order,
        super::trading::query_order,
        super::trading::cancel_order,
        super::trading::cancel_replace,
        super::trading::amend_keep_priority,
        super::trading::history::open_orders,
        super::trading::answers::cancel_all,
        super::trading::history::all_orders,
        super::trading::history::my_trades,
        super::trading::lists::new_oco,
        super::trading::lists::new_oto,
        super::trading::lists::cancel_list,
        super::trading::lists::query_list,
        super::trading::lists::all_lists,
        super::trading::lists::open_lists,
        super::account::account,
        super::account::order_rate_limits,
        super::userstream::open,
        super::userstream::keep_alive,
        super::userstream::close,
        crate::admin::deposit,
        crate::admin::withdraw,
        crate::admin::user_balances,
        crate::admin::audit,
        crate::admin::pairs::set_status,
        crate::admin::pairs::set_rules,
        crate::admin::listing::list_pair,
        super::healthz,
        super::readyz,
        super::metrics,
        crate::ws::upgrade,
        crate::wsapi::upgrade,
        crate::ws::upgrade_combined,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared),
    tags(
        (name = "General", description = "Binance's general endpoints."),
        (name = "Market data", description = "Binance's market data endpoints."),
        (name = "Trading", description = "Binance's trading endpoints: signed."),
        (name = "Account", description = "Binance's account endpoints: signed."),
        (name = "User data stream", description = "Binance's listen keys: the API key header, no signature."),
        (name = "Operators", description = "Deposits, withdrawals, balances, the audit and pairs' trading status and rules, for the exchange's operators: signed with an admin key."),
        (name = "Service", description = "Health, readiness, metrics, the WebSocket streams and this document."),
    )
)]
struct Api;

/// The document, as served: the pairs' names are the `symbol` values,
/// and the order endpoints have examples the first pair takes.
pub(crate) fn document(pairs: &[PairConfig]) -> Document {
    let mut doc = Api::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let names: Vec<String> = pairs.iter().map(|p| p.symbol.joined()).collect();
    restrict_symbols(&mut doc, &names);
    if let Some(example) = pairs.first().and_then(ExampleOrder::new) {
        example.add_to(&mut doc);
    }
    doc
}

/// The document as JSON, for [`openapi_json`].
pub(crate) fn document_json(pairs: &[PairConfig]) -> Bytes {
    // Serializing plain data into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&document(pairs)).unwrap_or_default())
}

/// The client order id of the examples' order.
pub(crate) const EXAMPLE_ORDER_ID: &str = "openapi-example";

/// The user of the operators' examples: the README's.
pub(crate) const EXAMPLE_USER: &str = "alice";

/// A `LIMIT` buy at the pair's lowest price, so that it rests, of twice
/// the least quantity its rules allow there, so that an amend to half of
/// it is valid too. The examples place it, query it, amend it, replace it
/// and cancel it.
#[derive(Debug)]
pub(crate) struct ExampleOrder {
    symbol: String,
    quote: String,
    quantity: String,
    amended: String,
    price: String,
}

impl ExampleOrder {
    /// The example for `p`, when its rules leave room for one.
    pub(crate) fn new(p: &PairConfig) -> Option<ExampleOrder> {
        let price = Price(p.tick_size.0.max(1));
        let least = u128::from(p.min_notional.0) * proto::pow10(p.qty_scale);
        let least = u64::try_from(least.div_ceil(u128::from(price.0))).ok()?;
        let lot = p.lot_size.0.max(1);
        let half = least.max(p.min_qty.0).div_ceil(lot).checked_mul(lot)?;
        let full = half.checked_mul(2)?;
        let order = NewOrder {
            order_id: OrderId(1),
            client_order_id: ClientOrderId::new(EXAMPLE_ORDER_ID).ok(),
            side: Side::Buy,
            order_type: OrderType::Limit { price },
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            stp: None,
            size: OrderSize::Base(Qty(full)),
            iceberg_qty: None,
            good_till: None,
        };
        engine::validate::new_order(p, &order).ok()?;
        engine::validate::qty(p, Qty(half)).ok()?;
        engine::validate::notional(p, price, Qty(half)).ok()?;
        Some(ExampleOrder {
            symbol: p.symbol.joined(),
            quote: p.symbol.assets().1.to_string(),
            quantity: Qty(full).to_decimal(p.qty_scale),
            amended: Qty(half).to_decimal(p.qty_scale),
            price: price.to_decimal(p.price_scale),
        })
    }

    /// The fields of a new order.
    fn order(&self) -> Value {
        json!({
            "symbol": self.symbol,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": self.quantity,
            "price": self.price,
        })
    }

    fn with(mut base: Value, extra: Value) -> Value {
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        base
    }

    /// Each operation's example.
    fn examples(&self) -> Vec<(Method, &'static str, Value)> {
        let this = json!({"symbol": self.symbol, "origClientOrderId": EXAMPLE_ORDER_ID});
        let movement = |reference: &str| json!({"user": EXAMPLE_USER, "asset": self.quote, "amount": "1", "ref": reference});
        vec![
            (
                Method::POST,
                "/api/v3/order",
                Self::with(self.order(), json!({"newClientOrderId": EXAMPLE_ORDER_ID})),
            ),
            (
                Method::POST,
                "/api/v3/order/test",
                Self::with(self.order(), json!({"computeCommissionRates": "true"})),
            ),
            (Method::GET, "/api/v3/order", this.clone()),
            (
                Method::PUT,
                "/api/v3/order/amend/keepPriority",
                Self::with(this.clone(), json!({"newQty": self.amended})),
            ),
            (
                Method::POST,
                "/api/v3/order/cancelReplace",
                Self::with(
                    self.order(),
                    json!({
                        "cancelReplaceMode": "ALLOW_FAILURE",
                        "cancelOrigClientOrderId": EXAMPLE_ORDER_ID,
                        "newClientOrderId": format!("{EXAMPLE_ORDER_ID}-2"),
                    }),
                ),
            ),
            (Method::DELETE, "/api/v3/order", this),
            (
                Method::POST,
                "/admin/v1/deposit",
                movement("openapi-example-deposit"),
            ),
            (
                Method::POST,
                "/admin/v1/withdraw",
                movement("openapi-example-withdrawal"),
            ),
            (
                Method::GET,
                "/admin/v1/balances",
                json!({"user": EXAMPLE_USER}),
            ),
        ]
    }

    /// Sets the examples: a body's as its media type's `example`, query
    /// parameters' as their schemas' `examples`.
    fn add_to(&self, doc: &mut Document) {
        for (method, path, example) in self.examples() {
            let Some(item) = doc.paths.paths.get_mut(path) else {
                continue;
            };
            let Some((_, op)) = operations(item).into_iter().find(|(m, _)| *m == method) else {
                continue;
            };
            if let Some(body) = &mut op.request_body {
                body.content
                    .values_mut()
                    .for_each(|c| c.example = Some(example.clone()));
                continue;
            }
            for p in op.parameters.iter_mut().flatten() {
                if let (Some(value), Some(RefOr::T(Schema::Object(o)))) =
                    (example.get(&p.name), &mut p.schema)
                {
                    o.examples = vec![value.clone()];
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "Service",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object)),
)]
pub(crate) async fn openapi_json(State(gw): App) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        gw.openapi.read().map(|d| d.clone()).unwrap_or_default(),
    )
        .into_response()
}

/// Every error answer: Binance's `{code, msg}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // describes `ApiError`'s body
pub(crate) struct ErrorBody {
    /// Binance's code where one exists (negative), else this exchange's own.
    code: i32,
    /// What went wrong, for a person.
    msg: String,
}

/// An error answer with `description`.
fn error(description: &str) -> RefOr<ApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("Error"))),
        )
        .build()
        .into()
}

/// An error answer that tells when to retry.
fn retry_error(description: &str) -> RefOr<ApiResponse> {
    let RefOr::T(mut r) = error(description) else {
        unreachable!("error() builds a response")
    };
    r.headers.insert(
        header::RETRY_AFTER.to_string(),
        header_of("Seconds to wait before retrying."),
    );
    RefOr::T(r)
}

fn header_of(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

/// A set of error answers, by status.
fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<ApiResponse>> {
    list.iter()
        .map(|(status, text)| (status.to_string(), error(text)))
        .collect()
}

const BAD_PARAMS: &str = "A parameter is missing (-1102), unknown to this endpoint (-1104), sent \
twice (-1101), malformed (-1100), out of range (-1111, -1112, -1120), not one of its values \
(-1116), not wanted with the others (-1106, -1128), or names no traded pair (-1121).";
const STORE_FAILED: &str = "The store failed (-1000); retry.";

/// The answers of an endpoint for its parameters.
#[derive(Debug)]
pub(crate) struct ParamErrors;

impl IntoResponses for ParamErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        errors(&[(400, BAD_PARAMS)])
    }
}

/// The answers of a public endpoint that reads parameters and the store.
#[derive(Debug)]
pub(crate) struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        errors(&[(400, BAD_PARAMS), (500, STORE_FAILED)])
    }
}

/// The answers of every signed request before its handler's own: the
/// body, the signature, the key's rate limit.
#[derive(Debug)]
pub(crate) struct SignedErrors;

impl IntoResponses for SignedErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        let mut out = errors(&[
            (400, BAD_PARAMS),
            (
                401,
                "No or a malformed key (-2014), an unknown key (-2015; -1050 for admin keys), a \
                 timestamp outside its receive window (-1021), or a bad signature (-1022).",
            ),
            (
                408,
                "The body did not arrive in time (-1041); the connection is closed.",
            ),
            (413, "The body is too large (-1131)."),
            (
                415,
                "The body is not application/x-www-form-urlencoded (-1132; JSON for the operators' API).",
            ),
            (500, STORE_FAILED),
        ]);
        out.insert(
            "429".into(),
            retry_error("Too many requests for this key (-1003) or too much request weight for this IP (-1003)."),
        );
        out
    }
}

/// The answers of a command sent to a pair's engine, past the signed
/// request's.
#[derive(Debug)]
pub(crate) struct CommandErrors;

impl IntoResponses for CommandErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        let mut out = BTreeMap::new();
        out.insert(
            "503".into(),
            retry_error("The pair is halted (-1009), or the exchange sheds load or is shutting down (-1008)."),
        );
        out.insert(
            "504".into(),
            error("The command is in the log but its outcome did not arrive in time (-1007): query the order."),
        );
        out
    }
}

/// The answers of a new order past [`CommandErrors`]: its account's order
/// counts.
#[derive(Debug)]
pub(crate) struct OrderCountErrors;

impl IntoResponses for OrderCountErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        let mut r = retry_error(
            "Too many new orders for this account in 10 s or in the UTC day (-1015), too many \
             requests for this key or too much request weight for this IP (-1003).",
        );
        if let RefOr::T(r) = &mut r {
            order_count_headers(r);
        }
        BTreeMap::from([("429".to_string(), r)])
    }
}

fn order_count_headers(r: &mut ApiResponse) {
    for (name, what) in [
        (
            ORDER_COUNT_10S,
            "New orders of this account in the current 10 s.",
        ),
        (
            ORDER_COUNT_1D,
            "New orders of this account in the current UTC day.",
        ),
    ] {
        r.headers
            .insert(name.as_str().to_ascii_uppercase(), header_of(what));
    }
}

/// What the layers and the signature check add to every operation, from
/// the functions they call.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let key = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
        };
        let query = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            "ApiKey",
            key(
                API_KEY_HEADER,
                "A trading key, as `exchange keys create` makes it.",
            ),
        );
        components.add_security_scheme(
            "AdminKey",
            key(
                ADMIN_KEY_HEADER,
                "An operator's key, as `exchange admin-keys create` makes it.",
            ),
        );
        components.add_security_scheme(
            "Timestamp",
            query(
                "timestamp",
                "The request's time in Unix milliseconds (query or body).",
            ),
        );
        components.add_security_scheme(
            "Signature",
            query(
                "signature",
                "Hex HMAC-SHA256, keyed by the key's secret, of the query string followed by the \
                 body, each without `signature` (which goes in either).",
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                shared_answers(&method, path, op);
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.parameters
                        .get_or_insert_with(Vec::new)
                        .push(recv_window());
                }
                for form in form_bodies(op) {
                    form.properties.values_mut().for_each(plain);
                }
            }
        }
    }
}

/// The operations of a path, with their methods.
fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// The answers every route may give because of the layers it passes:
/// the bounds on the request head, and for `/api/v3` the request weight,
/// which every answer reports.
fn shared_answers(method: &Method, path: &str, op: &mut Operation) {
    let responses = &mut op.responses.responses;
    responses.insert(
        "414".into(),
        error(&format!(
            "The path and query are longer than {} bytes (-1042).",
            crate::MAX_URI_BYTES
        )),
    );
    responses.insert(
        "431".into(),
        error("Too many request headers, or too many bytes of them (-1043)."),
    );
    if super::weights::weight(method, path, "").is_none() {
        return;
    }
    responses.entry("429".into()).or_insert_with(|| {
        retry_error("Too much request weight for this IP in the current minute (-1003).")
    });
    responses.insert(
        "418".into(),
        retry_error(
            "This IP is banned for sending on after 429s (-1003); the message says until when.",
        ),
    );
    for r in responses.values_mut() {
        if let RefOr::T(r) = r {
            r.headers.insert(
                USED_WEIGHT_1M.as_str().to_ascii_uppercase(),
                header_of("Request weight this IP used in the current minute."),
            );
        }
    }
}

/// `recvWindow`, read by the signature check of every signed request.
fn recv_window() -> Parameter {
    ParameterBuilder::new()
        .name("recvWindow")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "Milliseconds after `timestamp` the request is still valid (default 5,000).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .minimum(Some(1))
                .maximum(Some(MAX_RECV_WINDOW_MS as f64)),
        ))
        .build()
}

/// Makes every `symbol` parameter and form field one of `symbols`, the
/// traded pairs' names (`BTCEUR`): the document describes this exchange.
fn restrict_symbols(doc: &mut Document, symbols: &[String]) {
    if symbols.is_empty() {
        return;
    }
    let names = || {
        Some(
            symbols
                .iter()
                .map(|s| serde_json::json!(s))
                .collect::<Vec<_>>(),
        )
    };
    let restrict = |schema: &mut Option<RefOr<Schema>>| {
        if let Some(RefOr::T(Schema::Object(o))) = schema {
            o.enum_values = names();
        }
    };
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations(item) {
            for p in op.parameters.iter_mut().flatten() {
                if p.name == "symbol" {
                    restrict(&mut p.schema);
                }
            }
            for o in form_bodies(op) {
                if let Some(RefOr::T(Schema::Object(s))) = o.properties.get_mut("symbol") {
                    s.enum_values = names();
                }
            }
        }
    }
}

/// The schemas of `op`'s form bodies.
fn form_bodies(op: &mut Operation) -> impl Iterator<Item = &mut Object> {
    op.request_body
        .iter_mut()
        .flat_map(|b| b.content.iter_mut())
        .filter(|(media, _)| *media == "application/x-www-form-urlencoded")
        .filter_map(|(_, content)| match &mut content.schema {
            Some(RefOr::T(Schema::Object(o))) => Some(o),
            _ => None,
        })
}

/// A form's field as what it is when sent. The derive describes an
/// `Option` as "this or null", and a form has no null: a field is sent or
/// it is not. It also wraps a described field of a schema type in a
/// `oneOf` of that one schema, to hold the description.
fn plain(field: &mut RefOr<Schema>) {
    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    match field {
        RefOr::T(Schema::Object(o)) => {
            if let SchemaType::Array(types) = &o.schema_type
                && let [one] = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .collect::<Vec<_>>()[..]
            {
                o.schema_type = SchemaType::Type(one.clone());
            }
        }
        RefOr::T(Schema::OneOf(one)) => {
            one.items.retain(|s| !is_null(s));
            if one.items.len() != 1 {
                return;
            }
            let description = one.description.take();
            let mut kept = one.items.remove(0);
            if let RefOr::T(Schema::Object(o)) = &mut kept {
                o.description = o.description.take().or(description);
            }
            *field = kept;
        }
        _ => {}
    }
}

/// An answer that is one `item` for `symbol` and a list of them otherwise.
pub(crate) fn one_or_list_of(item: RefOr<Schema>) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(item.clone())
        .item(ArrayBuilder::new().items(item))
        .description(Some(
            "One object for `symbol`; a list for `symbols`, or for every pair when neither is sent.",
        ))
        .into()
}

/// Any of `items`' schemas.
pub(crate) fn any_of(items: impl IntoIterator<Item = RefOr<Schema>>) -> RefOr<Schema> {
    let mut b = AnyOfBuilder::new();
    for item in items {
        b = b.item(item);
    }
    b.into()
}

/// `{}`.
#[derive(Debug)]
pub(crate) struct EmptyObject;

impl PartialSchema for EmptyObject {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .max_properties(Some(0))
            .description(Some("An empty object."))
            .into()
    }
}

impl ToSchema for EmptyObject {}

/// An object schema with `extra` merged in: its properties, and its
/// required ones. For form bodies whose struct flattens another, which
/// the derive would describe as an `allOf` that two closed objects
/// cannot satisfy.
pub(crate) fn merged(base: RefOr<Schema>, extra: RefOr<Schema>) -> RefOr<Schema> {
    let (RefOr::T(Schema::Object(mut base)), RefOr::T(Schema::Object(extra))) = (base, extra)
    else {
        unreachable!("both are derived object schemas")
    };
    base.properties.extend(extra.properties);
    base.required.extend(extra.required);
    base.description = None;
    RefOr::T(Schema::Object(base))
}

/// Declares string types whose values are a fixed list, as their
/// parsers take them (checked by the tests), for `value_type` overrides.
macro_rules! names {
    ($($(#[$doc:meta])* $name:ident = [$($value:literal),* $(,)?];)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        #[allow(dead_code)] // a type for `value_type`, never built
        pub(crate) struct $name;

        impl $name {
            /// Every value, for the tests that hold them against the parsers.
            #[cfg(test)]
            #[allow(dead_code)] // not every list has a parser to hold it against
            pub(crate) const VALUES: &[&str] = &[$($value),*];
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([$($value),*]))
                    .into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

names! {
    /// `side`.
    SideName = ["BUY", "SELL"];
    /// An order's `type`.
    OrderTypeName = ["LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"];
    /// An OCO order's `type` (`aboveType`, `belowType`).
    OcoTypeName = ["LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"];
    /// `timeInForce`.
    TimeInForceName = ["GTC", "IOC", "FOK", "GTD"];
    /// An order list's `contingencyType`.
    ContingencyType = ["OCO", "OTO"];
    /// An order list's `listStatusType`.
    ListStatusType = ["EXEC_STARTED", "ALL_DONE"];
    /// An order list's `listOrderStatus`.
    ListOrderStatus = ["EXECUTING", "ALL_DONE"];
    /// `newOrderRespType`.
    RespTypeName = ["ACK", "RESULT", "FULL"];
    /// `selfTradePreventionMode`.
    StpModeName = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"];
    /// An order's `status`.
    OrderStatus = ["NEW", "PENDING_NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"];
    /// A pair's `status`.
    SymbolStatus = ["TRADING", "HALT", "BREAK"];
    /// A kline `interval`.
    KlineInterval = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"];
    /// `cancelRestrictions`.
    CancelRestrictions = ["ONLY_NEW", "ONLY_PARTIALLY_FILLED"];
    /// `cancelReplaceMode`.
    CancelReplaceMode = ["STOP_ON_FAILURE", "ALLOW_FAILURE"];
    /// A ticker's `type`.
    TickerType = ["FULL", "MINI"];
    /// `computeCommissionRates`.
    BoolText = ["true", "false"];
    /// A part of a cancel-replace.
    ReplaceResult = ["SUCCESS", "FAILURE", "NOT_ATTEMPTED"];
}

/// Declares string types with a pattern, for `value_type` overrides.
macro_rules! patterns {
    ($($(#[$doc:meta])* $name:ident = $pattern:literal, $max:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        #[allow(dead_code)] // a type for `value_type`, never built
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .max_length(Some($max))
                    .into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

patterns! {
    /// A decimal as Binance writes it: digits with an optional fraction,
    /// at most the pair's scale of decimals (more: -1111).
    Decimal = "^[0-9]+(\\.[0-9]+)?$", proto::MAX_DECIMAL_LEN;
    /// A client order id.
    ClientOrderIdText = "^[\\.A-Z\\:/a-z0-9_-]{1,36}$", 36;
    /// A rolling window: `1m`..`59m`, `1h`..`23h`, `1d`..`7d`.
    WindowSize = "^([1-9]|[1-5][0-9])m$|^([1-9]|1[0-9]|2[0-3])h$|^[1-7]d$", 3;
    /// A time zone as an offset: hours (`8`, `-3`) or hours and minutes
    /// (`05:45`, `+14:00`), within -12:00..+14:00.
    TimeZone = "^[+-]?[0-9]{1,2}(:[0-9]{1,2})?$", 6;
    /// A JSON array of pair names, such as `["BTCEUR","ETHEUR"]`.
    SymbolList = "^\\[.*\\]$", 8192;
}

/// `[price, quantity]`: one level of a book. (Positions are described
/// rather than given as `prefixItems`, which Schemathesis 4 cannot read.)
#[derive(Debug)]
#[allow(dead_code)] // a type for `value_type`, never built
pub(crate) struct PriceLevel;

impl PartialSchema for PriceLevel {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Decimal::schema())
            .min_items(Some(2))
            .max_items(Some(2))
            .description(Some("`[price, quantity]`"))
            .into()
    }
}

impl ToSchema for PriceLevel {}

#[cfg(test)]
mod tests;
