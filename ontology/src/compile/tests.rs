//! Tests of compiling, validating and rendering, over the order type of
//! `docs/tenant-package.md` (extended with a few fields to cover every kind).

use chrono::TimeZone;
use serde_json::json;

use super::*;

const ORDER: &str = r#"
name: order
label: Order
description: A customer's order
title: "{{ order_number }}"
number:
  field: order_number
  template: "ORD-{{ year }}-{{ seq | pad(6) }}"
fields:
  order_number: { type: string, generated: true, filterable: true }
  customer_id:  { type: reference, to: customer, required: true, filterable: true }
  warehouse_id: { type: reference, to: warehouse, required: true }
  notes:        { type: string, max_length: 2000, searchable: true }
  contact_email: { type: string, format: email }
  priority:     { type: enum, values: [low, normal, high], default: normal }
  total_amount: { type: number, minimum: 0, default: 0, sortable: true }
  delivery_date: { type: date, label: Delivery date }
  confirmed_at: { type: datetime }
  rush:         { type: boolean }
  shipping:
    type: object
    default: {}
    fields:
      method: { type: enum, values: [standard, express], default: standard }
      instructions: { type: string }
  items:
    type: array
    max_items: 500
    items:
      type: object
      fields:
        product_id: { type: reference, to: product, required: true }
        quantity:   { type: integer, minimum: 1, required: true }
        unit_price: { type: number, minimum: 0 }
        discount_pct: { type: number, minimum: 0, maximum: 100, default: 0 }
        line_total: { type: number }
  tags:
    type: array
    items: { type: string, min_length: 1 }
workflow:
  states:
    DRAFT: { kind: initial }
  transitions: {}
"#;

const CUSTOMER: &str = "a0190d2a-7c3e-7a1b-9c2d-3e4f5a6b7c8d";
const WAREHOUSE: &str = "b0190d2a-7c3e-7a1b-9c2d-3e4f5a6b7c8d";
const PRODUCT: &str = "c0190d2a-7c3e-7a1b-9c2d-3e4f5a6b7c8d";

fn def(yaml: &str) -> EntityTypeDef {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn order() -> CompiledType {
    CompiledType::compile(def(ORDER)).unwrap()
}

fn valid_order() -> Value {
    json!({
        "customer_id": CUSTOMER,
        "warehouse_id": WAREHOUSE,
        "priority": "high",
        "delivery_date": "2026-03-01",
        "confirmed_at": "2026-02-27T09:30:00Z",
        "contact_email": "buyer@example.com",
        "items": [
            { "product_id": PRODUCT, "quantity": 2, "unit_price": 1.5 },
            { "product_id": PRODUCT, "quantity": 1 }
        ]
    })
}

/// The errors of `data`, as (path, message) pairs.
fn errors(ty: &CompiledType, data: &Value) -> Vec<(String, String)> {
    ty.validate(data).unwrap_err().into_iter().map(|e| (e.path, e.message)).collect()
}

fn single_error(data: Value) -> (String, String) {
    let errs = errors(&order(), &data);
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().unwrap()
}

fn pair(path: &str, message: &str) -> (String, String) {
    (path.to_owned(), message.to_owned())
}

/// A minimal type with one field, for compile-error tests.
fn with_field(field: &str) -> Result<CompiledType, OntologyError> {
    CompiledType::compile(def(&format!("{{ name: thing, fields: {{ f: {field} }} }}")))
}

fn compile_error(field: &str) -> String {
    let err = with_field(field).unwrap_err();
    assert!(
        matches!(&err, OntologyError::InvalidField { type_name, path, .. } if type_name == "thing" && path.starts_with('f')),
        "{err:?}"
    );
    err.to_string()
}

#[test]
fn compiled_type_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledType>();
    assert_send_sync::<Ontology>();
}

#[test]
fn order_compiles_to_the_expected_schema() {
    let ty = order();
    assert_eq!(ty.name(), "order");
    assert!(ty.def().workflow.is_some());
    let s = ty.json_schema();
    assert_eq!(s["$schema"], DRAFT_2020_12);
    assert_eq!(s["type"], "object");
    assert_eq!(s["title"], "Order");
    assert_eq!(s["description"], "A customer's order");
    assert_eq!(s["additionalProperties"], false);
    // Generated fields are not required of the client.
    assert_eq!(s["required"], json!(["customer_id", "warehouse_id"]));
    let p = &s["properties"];
    assert_eq!(p["order_number"], json!({ "type": "string", "readOnly": true }));
    assert_eq!(p["customer_id"], json!({ "type": "string", "format": "uuid", "x-reference": "customer" }));
    assert_eq!(p["priority"], json!({ "type": "string", "enum": ["low", "normal", "high"], "default": "normal" }));
    assert_eq!(p["total_amount"], json!({ "type": "number", "minimum": 0, "default": 0 }));
    assert_eq!(
        p["delivery_date"],
        json!({ "title": "Delivery date", "type": "string", "format": "date", "pattern": DATE_PATTERN })
    );
    assert_eq!(p["confirmed_at"], json!({ "type": "string", "format": "date-time" }));
    assert_eq!(p["shipping"]["additionalProperties"], false);
    let item = &p["items"]["items"];
    assert_eq!(p["items"]["type"], "array");
    assert_eq!(p["items"]["maxItems"], 500);
    assert_eq!(item["type"], "object");
    assert_eq!(item["additionalProperties"], false);
    assert_eq!(item["required"], json!(["product_id", "quantity"]));
    assert_eq!(item["properties"]["quantity"], json!({ "type": "integer", "minimum": 1 }));
}

#[test]
fn valid_data_passes() {
    let ty = order();
    assert_eq!(ty.validate(&valid_order()), Ok(()));
    assert_eq!(ty.validate(&json!({ "customer_id": CUSTOMER, "warehouse_id": WAREHOUSE })), Ok(()));
}

#[test]
fn missing_required_field_is_reported_at_the_field() {
    let mut data = valid_order();
    data.as_object_mut().unwrap().remove("customer_id");
    assert_eq!(single_error(data), pair("/customer_id", "is required"));
}

#[test]
fn missing_required_field_in_array_element() {
    let mut data = valid_order();
    data["items"][1].as_object_mut().unwrap().remove("product_id");
    assert_eq!(single_error(data), pair("/items/1/product_id", "is required"));
}

#[test]
fn wrong_type() {
    let mut data = valid_order();
    data["items"][0]["quantity"] = json!("2");
    assert_eq!(single_error(data), pair("/items/0/quantity", "must be an integer"));
    let mut data = valid_order();
    data["items"][0]["quantity"] = json!(1.5);
    assert_eq!(single_error(data), pair("/items/0/quantity", "must be an integer"));
    let mut data = valid_order();
    data["rush"] = json!("yes");
    assert_eq!(single_error(data), pair("/rush", "must be true or false"));
    let mut data = valid_order();
    data["items"] = json!({});
    assert_eq!(single_error(data), pair("/items", "must be an array"));
    assert_eq!(errors(&order(), &json!([1])), vec![pair("", "must be an object")]);
}

#[test]
fn enum_mismatch() {
    let mut data = valid_order();
    data["priority"] = json!("urgent");
    assert_eq!(single_error(data), pair("/priority", "must be one of: low, normal, high"));
    let mut data = valid_order();
    data["priority"] = json!(3);
    assert_eq!(single_error(data).0, "/priority");
}

#[test]
fn minimum_and_maximum() {
    let mut data = valid_order();
    data["items"][0]["quantity"] = json!(0);
    assert_eq!(single_error(data), pair("/items/0/quantity", "must be >= 1"));
    let mut data = valid_order();
    data["items"][1]["discount_pct"] = json!(100.5);
    assert_eq!(single_error(data), pair("/items/1/discount_pct", "must be <= 100"));
    let mut data = valid_order();
    data["tags"] = json!(["ok", ""]);
    assert_eq!(single_error(data), pair("/tags/1", "must be at least 1 characters long"));
}

#[test]
fn bad_dates() {
    for bad in ["2026-02-30", "2026-13-01", "tomorrow", "2026-3-1", "2026-03-01T00:00:00Z"] {
        let mut data = valid_order();
        data["delivery_date"] = json!(bad);
        assert_eq!(single_error(data), pair("/delivery_date", "must be a date (YYYY-MM-DD)"), "{bad}");
    }
    let mut data = valid_order();
    data["confirmed_at"] = json!("2026-02-27 09:30");
    assert_eq!(single_error(data).0, "/confirmed_at");
}

#[test]
fn bad_uuid() {
    for bad in ["customer-1", "a0190d2a7c3e7a1b9c2d3e4f5a6b7c8", ""] {
        let mut data = valid_order();
        data["customer_id"] = json!(bad);
        assert_eq!(single_error(data), pair("/customer_id", "must be the id (a uuid) of a customer"), "{bad}");
    }
}

#[test]
fn bad_email() {
    let mut data = valid_order();
    data["contact_email"] = json!("not an email");
    assert_eq!(single_error(data), pair("/contact_email", "must be an email address"));
}

#[test]
fn unknown_fields() {
    let mut data = valid_order();
    data["colour"] = json!("red");
    data["items"][0]["discount"] = json!(5);
    data["shipping"] = json!({ "method": "express", "carrier": "x" });
    let mut errs = errors(&order(), &data);
    errs.sort();
    assert_eq!(
        errs,
        vec![
            pair("/colour", "unknown field"),
            pair("/items/0/discount", "unknown field"),
            pair("/shipping/carrier", "unknown field"),
        ]
    );
}

#[test]
fn all_errors_are_reported() {
    let data = json!({
        "warehouse_id": "nope",
        "priority": "urgent",
        "items": [{ "quantity": 0 }],
        "id": "reserved names are not data"
    });
    let mut errs = errors(&order(), &data);
    errs.sort();
    assert_eq!(
        errs,
        vec![
            pair("/customer_id", "is required"),
            pair("/id", "unknown field"),
            pair("/items/0/product_id", "is required"),
            pair("/items/0/quantity", "must be >= 1"),
            pair("/priority", "must be one of: low, normal, high"),
            pair("/warehouse_id", "must be the id (a uuid) of a warehouse"),
        ]
    );
}

#[test]
fn field_errors_serialize() {
    let err = FieldError { path: "/a".into(), message: "is required".into() };
    assert_eq!(serde_json::to_value(&err).unwrap(), json!({ "path": "/a", "message": "is required" }));
    assert_eq!(err.to_string(), "/a: is required");
}

#[test]
fn defaults_are_applied_at_every_depth() {
    let ty = order();
    let mut data = json!({
        "priority": "high",
        "items": [
            { "product_id": PRODUCT, "quantity": 1 },
            { "product_id": PRODUCT, "quantity": 1, "discount_pct": 5 }
        ]
    });
    ty.apply_defaults(&mut data);
    assert_eq!(
        data,
        json!({
            "priority": "high",
            "items": [
                { "product_id": PRODUCT, "quantity": 1, "discount_pct": 0 },
                { "product_id": PRODUCT, "quantity": 1, "discount_pct": 5 }
            ],
            "total_amount": 0,
            "shipping": { "method": "standard" }
        })
    );
    // Present values, null included, are left alone.
    let mut data = json!({ "priority": null, "shipping": { "method": "express" } });
    ty.apply_defaults(&mut data);
    assert_eq!(data["priority"], Value::Null);
    assert_eq!(data["shipping"], json!({ "method": "express" }));
}

#[test]
fn defaults_do_not_create_objects_without_default() {
    let ty = CompiledType::compile(def(
        "{ name: t, fields: { a: { type: object, fields: { b: { type: integer, default: 1 } } } } }",
    ))
    .unwrap();
    let mut data = json!({});
    ty.apply_defaults(&mut data);
    assert_eq!(data, json!({}));
    let mut data = json!({ "a": {} });
    ty.apply_defaults(&mut data);
    assert_eq!(data, json!({ "a": { "b": 1 } }));
}

#[test]
fn number_renders() {
    let ty = order();
    assert_eq!(ty.number_field(), Some("order_number"));
    let now = Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap();
    assert_eq!(ty.render_number(123, now, &valid_order()).unwrap().as_deref(), Some("ORD-2026-000123"));
    let ty = CompiledType::compile(def(
        r#"{ name: t, number: { field: n, template: "{{ warehouse }}/{{ year }}{{ month }}{{ day }}-{{ seq }}" },
             fields: { n: { type: string, generated: true }, warehouse: { type: string } } }"#,
    ))
    .unwrap();
    assert_eq!(ty.render_number(7, now, &json!({ "warehouse": "NBO" })).unwrap().as_deref(), Some("NBO/20260307-7"));
    let plain = with_field("{ type: string }").unwrap();
    assert_eq!(plain.number_field(), None);
    assert_eq!(plain.render_number(1, now, &json!({})).unwrap(), None);
}

#[test]
fn title_renders() {
    let ty = order();
    assert_eq!(
        ty.render_title(&json!({ "order_number": "ORD-2026-000123" })).unwrap().as_deref(),
        Some("ORD-2026-000123")
    );
    // Nothing to show yet: the caller falls back.
    assert_eq!(ty.render_title(&json!({})).unwrap(), None);
    let ty = CompiledType::compile(def(r#"{ name: t, title: "{{ name }} ({{ items | length }} items)",
             fields: { name: { type: string }, items: { type: array, items: { type: integer } } } }"#))
    .unwrap();
    assert_eq!(
        ty.render_title(&json!({ "name": "Soda", "items": [1, 2] })).unwrap().as_deref(),
        Some("Soda (2 items)")
    );
    assert_eq!(with_field("{ type: string }").unwrap().render_title(&json!({})).unwrap(), None);
}

#[test]
fn a_title_names_references_by_their_titles() {
    let ty = CompiledType::compile(def(r#"{ name: stock, title: "Stock of {{ product_id | title_of }} in {{ warehouse_id }}",
             fields: { product_id: { type: reference, to: product }, warehouse_id: { type: reference, to: warehouse } } }"#))
    .unwrap();
    let refs: Vec<(&str, &str)> = ty.title_references().iter().map(|r| (r.path.as_str(), r.to.as_str())).collect();
    assert_eq!(refs, [("product_id", "product")]);
    let data = json!({ "product_id": "p-1", "warehouse_id": "w-1" });
    let titles = std::collections::BTreeMap::from([("p-1".to_owned(), "SKU-1 Soda".to_owned())]);
    assert_eq!(ty.render_title_with(&data, &titles).unwrap().as_deref(), Some("Stock of SKU-1 Soda in w-1"));
    assert_eq!(ty.render_title(&data).unwrap().as_deref(), Some("Stock of p-1 in w-1"));

    // On anything but a reference field it renders the value (`tenant validate` says so).
    let ty = CompiledType::compile(def(
        r#"{ name: t, title: "{{ name | title_of }}", fields: { name: { type: string } } }"#,
    ))
    .unwrap();
    assert!(ty.title_references().is_empty(), "nothing to look up");
    assert_eq!(ty.render_title(&json!({ "name": "p-1" })).unwrap().as_deref(), Some("p-1"));
}

#[test]
fn runaway_title_fails_fast() {
    // Loops cannot be written: a template that would run away is refused when its type compiles.
    for title in [
        "{% for i in range(100000000) %}x{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    ] {
        let err = CompiledType::compile(def(&format!(r#"{{ name: t, title: "{title}", fields: {{}} }}"#))).unwrap_err();
        assert!(matches!(&err, OntologyError::Template { path, .. } if path == "title"), "{err:?}");
        assert!(err.to_string().contains("`for` is not available"), "{err}");
    }
}

#[test]
fn bad_templates_fail_compile() {
    let err = CompiledType::compile(def(r#"{ name: t, title: "{{ x ", fields: {} }"#)).unwrap_err();
    assert!(matches!(&err, OntologyError::Template { path, .. } if path == "title"), "{err:?}");
    let err = CompiledType::compile(def(
        r#"{ name: t, number: { field: n, template: "{% if %}" }, fields: { n: { type: string, generated: true } } }"#,
    ))
    .unwrap_err();
    assert!(matches!(&err, OntologyError::Template { path, .. } if path == "number.template"), "{err:?}");
    // A template that fails whatever the data is found when compiled, not at the first create.
    let err = CompiledType::compile(def(
        r#"{ name: t, number: { field: n, template: "{{ seq | pad(100) }}" }, fields: { n: { type: string, generated: true } } }"#,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("pad width"), "{err}");
    // One that fails only on some data is not (a missing value pads to nothing).
    let ty = CompiledType::compile(def(
        r#"{ name: t, number: { field: n, template: "{{ kind | pad(3) }}-{{ seq }}" }, fields: { n: { type: string, generated: true }, kind: { type: array, items: { type: string } } } }"#,
    ))
    .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(ty.render_number(4, now, &json!({})).unwrap().as_deref(), Some("-4"));
    assert!(ty.render_number(4, now, &json!({ "kind": ["a"] })).is_err());
}

#[test]
fn references_include_nested_ones() {
    let refs = order().references();
    let refs: Vec<(&str, &str)> = refs.iter().map(|r| (r.path.as_str(), r.to.as_str())).collect();
    assert_eq!(
        refs,
        vec![("customer_id", "customer"), ("warehouse_id", "warehouse"), ("items[].product_id", "product"),]
    );
    let ty = with_field("{ type: array, items: { type: reference, to: tag } }").unwrap();
    assert_eq!(ty.references()[0].path, "f[]");
}

#[test]
fn fields_by_path() {
    let ty = order();
    assert_eq!(ty.field("customer_id").unwrap().to.as_ref().unwrap(), "customer");
    assert_eq!(ty.field("items.product_id").unwrap().kind, FieldKind::Reference);
    assert_eq!(ty.field("items[].quantity").unwrap().kind, FieldKind::Integer);
    assert_eq!(ty.field("items").unwrap().kind, FieldKind::Array);
    assert_eq!(ty.field("items[]").unwrap().kind, FieldKind::Object);
    assert_eq!(ty.field("shipping.method").unwrap().kind, FieldKind::Enum);
    assert_eq!(ty.field("tags").unwrap().kind, FieldKind::Array);
    for missing in ["", "nope", "customer_id.x", "items.nope", "shipping.method.x", "tags.x", "items[][]"] {
        assert!(ty.field(missing).is_none(), "{missing}");
    }
}

#[test]
fn options_must_fit_the_kind() {
    let cases = [
        ("{ type: enum }", "needs `values"),
        ("{ type: enum, values: [] }", "needs `values"),
        ("{ type: enum, values: [a, a] }", "twice"),
        ("{ type: reference }", "needs `to"),
        ("{ type: object }", "needs `fields"),
        ("{ type: array }", "needs `items"),
        ("{ type: string, values: [a] }", "`values` does not apply to a string field"),
        ("{ type: string, to: customer }", "`to` does not apply"),
        ("{ type: integer, max_length: 3 }", "`max_length` does not apply"),
        ("{ type: string, minimum: 1 }", "`minimum` does not apply"),
        ("{ type: string, min_items: 1 }", "`min_items` does not apply"),
        ("{ type: number, minimum: 5, maximum: 1 }", "greater than"),
        ("{ type: string, min_length: 5, max_length: 1 }", "greater than"),
        ("{ type: array, items: { type: string }, min_items: 3, max_items: 1 }", "greater than"),
        ("{ type: string, pattern: '(' }", "regular expression"),
        ("{ type: string, pattern: '(?=a)' }", "regular expression"),
        ("{ type: string, format: colour }", "unknown `format`"),
        ("{ type: enum, values: [a, b], default: c }", "`default` \"c\" does not fit"),
        ("{ type: integer, minimum: 1, default: 0 }", "does not fit"),
        ("{ type: date, default: tomorrow }", "does not fit"),
        ("{ type: array, items: { type: string, required: true } }", "array items"),
        ("{ type: array, items: { type: string, default: x } }", "array items"),
        ("{ type: object, fields: { a: { type: string, filterable: true } } }", "top-level"),
        ("{ type: object, fields: { a: { type: string } }, sortable: true }", "cannot be `sortable`"),
        ("{ type: integer, searchable: true }", "`searchable` does not apply"),
    ];
    for (field, expected) in cases {
        let message = compile_error(field);
        assert!(message.contains(expected), "{field}: {message}");
    }
    let err = compile_error("{ type: array, items: { type: enum } }");
    assert!(err.contains("field f[]:"), "{err}");
    let err = compile_error("{ type: object, fields: { a: { type: reference } } }");
    assert!(err.contains("field f.a:"), "{err}");
}

#[test]
fn good_options_compile() {
    for field in [
        "{ type: string, min_length: 1, max_length: 3, pattern: '^[A-Z]+$' }",
        "{ type: string, format: email }",
        "{ type: integer, minimum: -5, maximum: 5, default: 0 }",
        "{ type: object, default: { a: x }, fields: { a: { type: string } } }",
        "{ type: array, items: { type: string }, min_items: 1, max_items: 1, default: [x] }",
        "{ type: datetime, default: '2026-01-01T00:00:00Z' }",
        "{ type: reference, to: thing, filterable: true }",
    ] {
        assert!(with_field(field).is_ok(), "{field}");
    }
}

#[test]
fn pattern_is_enforced() {
    let ty = with_field("{ type: string, pattern: '^[A-Z]{3}$' }").unwrap();
    assert_eq!(ty.validate(&json!({ "f": "ABC" })), Ok(()));
    assert_eq!(errors(&ty, &json!({ "f": "abc" })), vec![pair("/f", "must match the pattern ^[A-Z]{3}$")]);
}

#[test]
fn reserved_field_names_are_refused() {
    let err = serde_yaml_ng::from_str::<EntityTypeDef>(
        "{ name: t, fields: { items: { type: object, fields: { state: { type: string } } } } }",
    )
    .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
}

#[test]
fn number_field_must_be_a_generated_string() {
    for fields in [
        "{ n: { type: string } }",
        "{ n: { type: integer, generated: true } }",
        "{ m: { type: string, generated: true } }",
    ] {
        let err = CompiledType::compile(def(&format!(
            "{{ name: t, number: {{ field: n, template: x }}, fields: {fields} }}"
        )))
        .unwrap_err();
        assert!(matches!(&err, OntologyError::InvalidField { path, .. } if path == "number"), "{fields}: {err:?}");
    }
}

fn package() -> Vec<EntityTypeDef> {
    vec![
        def(ORDER),
        def("{ name: customer, fields: { name: { type: string, required: true } } }"),
        def("{ name: warehouse, fields: { code: { type: string } } }"),
        def("{ name: product, fields: { sku: { type: string } } }"),
    ]
}

#[test]
fn compile_types_builds_the_ontology() {
    let ontology = compile_types(package()).unwrap();
    assert_eq!(ontology.len(), 4);
    assert_eq!(ontology.names().collect::<Vec<_>>(), ["order", "customer", "warehouse", "product"]);
    assert_eq!(ontology.get("order").unwrap().name(), "order");
    assert!(ontology.get("nope").is_none());
    assert_eq!(ontology.iter().count(), 4);
}

#[test]
fn compile_types_reports_unknown_reference_targets() {
    let mut defs = package();
    defs.retain(|d| d.name != "product");
    let errs = compile_types(defs).unwrap_err();
    assert_eq!(
        errs,
        vec![OntologyError::UnknownReference {
            type_name: "order".into(),
            path: "items[].product_id".into(),
            to: "product".into(),
        }]
    );
    assert!(errs[0].to_string().contains("items[].product_id"));
    assert!(errs[0].to_string().contains("\"product\""));
}

#[test]
fn compile_types_reports_every_error() {
    let mut defs = package();
    defs.push(def("{ name: customer, fields: {} }"));
    defs.push(def("{ name: broken, fields: { x: { type: reference } } }"));
    defs.push(def("{ name: dangling, fields: { x: { type: reference, to: ghost } } }"));
    let errs = compile_types(defs).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(matches!(&errs[0], OntologyError::DuplicateType { name } if name == "customer"));
    assert!(matches!(&errs[1], OntologyError::InvalidField { type_name, .. } if type_name == "broken"));
    assert!(matches!(&errs[2], OntologyError::UnknownReference { to, .. } if to == "ghost"));
}

#[test]
fn user_fields_compile_to_uuids_and_are_collected_at_every_depth() {
    let ty = CompiledType::compile(def(r#"
name: trip
fields:
  driver_id: { type: user, role: driver, filterable: true }
  checked_by: { type: user }
  stops:
    type: array
    items: { type: object, fields: { signed_by: { type: user, role: customer } } }
"#))
    .unwrap();
    assert_eq!(
        ty.user_fields(),
        [
            UserField { path: "driver_id".into(), role: Some("driver".into()) },
            UserField { path: "checked_by".into(), role: None },
            UserField { path: "stops[].signed_by".into(), role: Some("customer".into()) },
        ]
    );
    assert!(ty.references().is_empty());
    let schema = &ty.json_schema()["properties"]["driver_id"];
    assert_eq!(schema, &json!({ "type": "string", "format": "uuid", "x-user": { "role": "driver" } }));
    assert_eq!(ty.json_schema()["properties"]["checked_by"]["x-user"], json!({ "role": null }));
    assert!(ty.validate(&json!({ "driver_id": "0191d2b4-6f3c-7a1e-9b1e-1234567890ab" })).is_ok());
    assert_eq!(
        errors(&ty, &json!({ "driver_id": "dan@example.test", "checked_by": 3 })),
        [
            pair("/driver_id", "must be the id (a uuid) of a user with the role driver"),
            pair("/checked_by", "must be the id (a uuid) of a user")
        ]
    );
}

#[test]
fn role_belongs_to_user_fields_only() {
    assert!(compile_error("{ type: string, role: driver }")
        .contains("`role` does not apply to a string field (only to user)"));
    assert!(compile_error("{ type: user, role: '' }").contains("`role` must name a role"));
    assert!(with_field("{ type: user, unique: true }").is_ok());
}
