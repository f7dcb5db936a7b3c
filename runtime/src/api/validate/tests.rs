use super::*;
use serde_json::json;

/// A 3.0 pet store: `nullable`, boolean `exclusiveMinimum`, `readOnly`, a discriminated
/// `oneOf`, a recursive category tree, and a parameter given by `$ref`.
fn petstore_30() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pets", "version": "1"},
        "paths": {
            "/pets/{petId}": {
                "get": {
                    "parameters": [
                        {"$ref": "#/components/parameters/PetId"},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": true, "maximum": 100}}
                    ],
                    "responses": {"200": {"$ref": "#/components/responses/Pet"}}
                }
            }
        },
        "components": {
            "parameters": {
                "PetId": {"name": "petId", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
            },
            "responses": {
                "Pet": {"description": "a pet", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}
            },
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["id", "name", "status"],
                    "additionalProperties": false,
                    "properties": {
                        "id": {"type": "integer", "format": "int64", "readOnly": true},
                        "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "status": {"type": "string", "enum": ["available", "sold"]},
                        "nickname": {"type": "string", "nullable": true},
                        "password": {"type": "string", "writeOnly": true},
                        "owner": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Owner"}]},
                        "weight": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 100, "exclusiveMaximum": false},
                        "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}, "maxItems": 3, "uniqueItems": true},
                        "born": {"type": "string", "format": "date"},
                        "seen": {"type": "string", "format": "date-time"},
                        "category": {"$ref": "#/components/schemas/Category"},
                        "animal": {"$ref": "#/components/schemas/Animal"},
                        "mood": {"type": "string", "enum": ["calm", "wild"], "nullable": true}
                    }
                },
                "Owner": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}},
                "Tag": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                "Category": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "parent": {"$ref": "#/components/schemas/Category"},
                        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Category"}}
                    }
                },
                "Animal": {
                    "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                    "discriminator": {"propertyName": "kind", "mapping": {"doggo": "#/components/schemas/Dog"}}
                },
                "Cat": {"type": "object", "required": ["kind", "lives"], "properties": {"kind": {"type": "string"}, "lives": {"type": "integer", "maximum": 9}}},
                "Dog": {"type": "object", "required": ["kind", "bark"], "properties": {"kind": {"type": "string"}, "bark": {"type": "boolean"}}}
            }
        }
    })
}

fn schema(doc: &Value, pointer: &str) -> Compiled {
    compile(doc, Dialect::of(doc), pointer).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

fn err(schema: &Compiled, value: Value) -> (String, String) {
    let e = schema.validate(&value).expect_err("should fail");
    (e.pointer, e.message)
}

fn pet() -> Value {
    json!({"name": "rex", "status": "sold"})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

#[test]
fn openapi_30_document() {
    let doc = petstore_30();
    let pet_id = schema(&doc, "/paths/~1pets~1{petId}/get/parameters/0/schema");
    let limit = schema(&doc, "/paths/~1pets~1{petId}/get/parameters/1/schema");
    let body = schema(&doc, "/paths/~1pets~1{petId}/get/responses/200/content/application~1json/schema");

    assert!(pet_id.validate(&json!("0b6f4d2e-2f0a-4c2b-9a55-7d8e1f0a9c3b")).is_ok());
    assert_eq!(err(&pet_id, json!("nope")), ("".into(), "must be a UUID".into()));

    // boolean exclusiveMinimum (Draft 4's own): 0 < limit <= 100
    assert!(limit.validate(&json!(1)).is_ok());
    assert!(limit.validate(&json!(100)).is_ok());
    assert_eq!(err(&limit, json!(0)).1, "must be greater than 0");
    assert_eq!(err(&limit, json!(101)).1, "must be at most 100");
    assert_eq!(err(&limit, json!(5.5)).1, "must be an integer");
    assert_eq!(err(&limit, json!("5")).1, "must be an integer");

    assert!(body.validate(&pet()).is_ok());
    assert_eq!(err(&body, json!([])), ("".into(), "must be an object".into()));
    assert_eq!(err(&body, json!({"name": "rex"})), ("".into(), "missing required property `status`".into()));
    // nullable
    assert!(body.validate(&with(pet(), "nickname", Value::Null)).is_ok());
    assert_eq!(err(&body, with(pet(), "name", Value::Null)), ("/name".into(), "must be a string".into()));
    assert_eq!(err(&body, with(pet(), "nickname", json!(5))), ("/nickname".into(), "must be a string or null".into()));
    assert!(body.validate(&with(pet(), "mood", Value::Null)).is_ok(), "nullable beside enum");
    assert!(body.validate(&with(pet(), "mood", json!("wild"))).is_ok());
    assert!(body.validate(&with(pet(), "mood", json!("sad"))).is_err());
    // nullable beside allOf: null passes, a bad owner fails inside
    assert!(body.validate(&with(pet(), "owner", Value::Null)).is_ok());
    assert!(body.validate(&with(pet(), "owner", json!({"email": "a@b.c"}))).is_ok());
    assert_eq!(
        err(&body, with(pet(), "owner", json!({"email": "not an email"}))),
        ("/owner/email".into(), "must be an email address".into())
    );
    assert_eq!(err(&body, with(pet(), "owner", json!({}))), ("/owner".into(), "missing required property `email`".into()));
    // number bounds: exclusiveMinimum true, exclusiveMaximum false
    assert!(body.validate(&with(pet(), "weight", json!(100))).is_ok());
    assert_eq!(err(&body, with(pet(), "weight", json!(0))).1, "must be greater than 0");
    assert_eq!(err(&body, with(pet(), "weight", json!(100.5))).1, "must be at most 100");
    // strings
    assert_eq!(err(&body, with(pet(), "name", json!(""))).1, "must be at least 1 character long");
    assert_eq!(err(&body, with(pet(), "name", json!("abcdef"))).1, "must be at most 5 characters long");
    assert_eq!(err(&body, with(pet(), "name", json!("Rex"))).1, "must match pattern ^[a-z]+$");
    assert_eq!(
        err(&body, with(pet(), "status", json!("lost"))),
        ("/status".into(), "must be one of \"available\", \"sold\"".into())
    );
    // additionalProperties: false
    assert_eq!(err(&body, with(pet(), "colour", json!("red"))), ("/colour".into(), "unknown property `colour`".into()));
    // arrays, pointer into items
    assert!(body.validate(&with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}]))).is_ok());
    assert_eq!(
        err(&body, with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": 3}]))),
        ("/tags/2/name".into(), "must be a string".into())
    );
    assert_eq!(
        err(&body, with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": "a"}]))).1,
        "must not contain duplicate items"
    );
    assert_eq!(
        err(&body, with(pet(), "tags", json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]))).1,
        "must have at most 3 items"
    );
    // dates
    assert!(body.validate(&with(pet(), "born", json!("2024-02-29"))).is_ok());
    assert_eq!(err(&body, with(pet(), "born", json!("2023-02-29"))).1, "must be a date (YYYY-MM-DD)");
    assert!(body.validate(&with(pet(), "seen", json!("2024-01-31T12:00:00.5+02:00"))).is_ok());
    assert!(body.validate(&with(pet(), "seen", json!("2024-01-31"))).is_err());
}

#[test]
fn nullable_is_a_type_union_in_3_0_only() {
    let doc = petstore_30();
    let compiled = schema(&doc, "/components/schemas/Pet");
    assert!(compiled.validate(&with(pet(), "nickname", Value::Null)).is_ok());
    // In a 3.1 document `nullable` means nothing: `type: [string, "null"]` is how.
    let doc = doc_31(json!({"S": {"type": "string", "nullable": true}, "U": {"type": ["string", "null"]}}));
    assert_eq!(err(&schema(&doc, "/components/schemas/S"), Value::Null).1, "must be a string");
    assert!(schema(&doc, "/components/schemas/U").validate(&Value::Null).is_ok());
}

#[test]
fn exclusive_bounds_in_either_form() {
    // 3.0 with a 3.1-style numeric bound; 3.1 with a 3.0-style boolean one.
    let doc = json!({"openapi": "3.0.0", "components": {"schemas": {"N": {"type": "number", "exclusiveMinimum": 5}}}});
    let n = schema(&doc, "/components/schemas/N");
    assert!(n.validate(&json!(5.5)).is_ok());
    assert_eq!(err(&n, json!(5)).1, "must be greater than 5");
    let doc = doc_31(json!({"N": {"type": "number", "minimum": 5, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false}}));
    let n = schema(&doc, "/components/schemas/N");
    assert!(n.validate(&json!(9)).is_ok());
    assert_eq!(err(&n, json!(5)).1, "must be greater than 5");
    // A 3.0 `exclusiveMinimum: false` without `minimum` (Draft 4 would refuse it) is harmless.
    let doc = json!({"openapi": "3.0.0", "components": {"schemas": {"N": {"type": "number", "exclusiveMinimum": false}}}});
    assert!(schema(&doc, "/components/schemas/N").validate(&json!(-1)).is_ok());
}

#[test]
fn int32_and_int64_formats() {
    let doc = doc_31(json!({
        "i32": {"type": "integer", "format": "int32"},
        "i64": {"type": "integer", "format": "int64"}
    }));
    let i32s = schema(&doc, "/components/schemas/i32");
    let i64s = schema(&doc, "/components/schemas/i64");
    assert!(i32s.validate(&json!(i32::MAX)).is_ok());
    assert!(i32s.validate(&json!(i32::MIN)).is_ok());
    assert_eq!(err(&i32s, json!(i64::from(i32::MAX) + 1)).1, "must be a 32-bit integer");
    assert_eq!(err(&i32s, json!(3_000_000_000u64)).1, "must be a 32-bit integer");
    assert_eq!(err(&i32s, json!(i64::from(i32::MIN) - 1)).1, "must be a 32-bit integer");
    assert!(i64s.validate(&json!(i64::MIN)).is_ok());
    assert_eq!(err(&i64s, json!(u64::MAX)).1, "must be a 64-bit integer");
    // the same in a 3.0 document
    let doc = json!({"openapi": "3.0.3", "components": {"schemas": {"i": {"type": "integer", "format": "int32"}}}});
    assert_eq!(err(&schema(&doc, "/components/schemas/i"), json!(1u64 << 40)).1, "must be a 32-bit integer");
}

#[test]
fn read_only_properties_are_neither_required_nor_checked_in_requests() {
    let doc = petstore_30();
    let body = schema(&doc, "/components/schemas/Pet");
    let request = json!({"name": "rex", "status": "sold"});
    assert!(body.validate(&request).is_ok(), "`id` is required, but readOnly");
    assert!(body.validate(&with(request, "id", json!("whatever"))).is_ok());
    // readOnly through a $ref
    let doc = doc_31(json!({
        "Id": {"type": "integer", "readOnly": true},
        "T": {"type": "object", "required": ["id", "x"], "properties": {"id": {"$ref": "#/components/schemas/Id"}, "x": {"type": "string"}}}
    }));
    let t = schema(&doc, "/components/schemas/T");
    assert!(t.validate(&json!({"x": "a"})).is_ok());
    assert_eq!(err(&t, json!({"id": 1})).1, "missing required property `x`");
}

#[test]
fn recursion() {
    let doc = petstore_30();
    let category = schema(&doc, "/components/schemas/Category");
    let tree = json!({"name": "a", "parent": {"name": "b", "parent": {"name": "c"}},
        "children": [{"name": "d", "children": [{"name": "e"}, {"name": 5}]}]});
    assert_eq!(err(&category, tree), ("/children/0/children/1/name".into(), "must be a string".into()));
}

#[test]
fn discriminator_picks_the_alternative() {
    let doc = petstore_30();
    let animal = schema(&doc, "/components/schemas/Animal");
    assert!(animal.validate(&json!({"kind": "Cat", "lives": 9})).is_ok());
    assert!(animal.validate(&json!({"kind": "doggo", "bark": true})).is_ok());
    assert!(animal.validate(&json!({"kind": "Dog", "bark": true})).is_ok());
    assert_eq!(err(&animal, json!({"kind": "Cat", "lives": 10})), ("/lives".into(), "must be at most 9".into()));
    assert_eq!(err(&animal, json!({"kind": "Dog", "lives": 1})), ("".into(), "missing required property `bark`".into()));
    assert_eq!(
        err(&animal, json!({"kind": "Lizard"})),
        ("/kind".into(), "`Lizard` is not a known `kind`; expected one of \"doggo\", \"Cat\", \"Dog\"".into())
    );
    assert_eq!(err(&animal, json!({"lives": 1})), ("".into(), "missing required property `kind`".into()));
    assert_eq!(err(&animal, json!({"kind": 1})), ("/kind".into(), "must be a string".into()));
    // not an object: plain oneOf evaluation
    assert_eq!(err(&animal, json!(3)).1, "must match one of the allowed schemas: must be an object");
    // inside another schema
    let pet = schema(&doc, "/components/schemas/Pet");
    assert_eq!(
        err(&pet, with(super::tests::pet(), "animal", json!({"kind": "Cat", "lives": "x"}))),
        ("/animal/lives".into(), "must be an integer".into())
    );
}

fn doc_31(schemas: Value) -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "components": {"schemas": schemas}})
}

#[test]
fn openapi_31_document() {
    let doc = doc_31(json!({
        "Item": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": ["integer", "string"]},
                "note": {"type": ["string", "null"], "maxLength": 3},
                "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 0.5},
                "link": {"$ref": "#/components/schemas/Link", "required": ["extra"]},
                "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
                "kind": {"const": "item"},
                "anything": true,
                "nothing": false
            }
        },
        "Link": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}
    }));
    let item = schema(&doc, "/components/schemas/Item");
    let ok = |v: Value| item.validate(&v).map_err(|e| (e.pointer, e.message));
    assert!(ok(json!({"id": 1})).is_ok());
    assert!(ok(json!({"id": "a", "note": null})).is_ok());
    assert_eq!(ok(json!({"id": true})).unwrap_err(), ("/id".into(), "must be a string or an integer".into()));
    assert_eq!(ok(json!({"id": 1, "note": "long"})).unwrap_err().1, "must be at most 3 characters long");
    assert_eq!(ok(json!({"id": 1, "note": 5})).unwrap_err().1, "must be a string or null");
    assert!(ok(json!({"id": 1, "score": 9.5})).is_ok());
    assert_eq!(ok(json!({"id": 1, "score": 0})).unwrap_err().1, "must be greater than 0");
    assert_eq!(ok(json!({"id": 1, "score": 10})).unwrap_err().1, "must be less than 10");
    assert_eq!(ok(json!({"id": 1, "score": 1.2})).unwrap_err().1, "must be a multiple of 0.5");
    // $ref with siblings: both apply
    assert!(ok(json!({"id": 1, "link": {"href": "x", "extra": 1}})).is_ok());
    assert_eq!(ok(json!({"id": 1, "link": {"href": "x"}})).unwrap_err(), ("/link".into(), "missing required property `extra`".into()));
    assert_eq!(ok(json!({"id": 1, "link": {"extra": 1}})).unwrap_err(), ("/link".into(), "missing required property `href`".into()));
    // prefixItems + items: false
    assert!(ok(json!({"id": 1, "pair": ["a", 1]})).is_ok());
    assert_eq!(ok(json!({"id": 1, "pair": ["a", "b"]})).unwrap_err(), ("/pair/1".into(), "must be an integer".into()));
    assert!(ok(json!({"id": 1, "pair": ["a", 1, 2]})).is_err());
    assert!(ok(json!({"id": 1, "kind": "item"})).is_ok());
    assert_eq!(ok(json!({"id": 1, "kind": "other"})).unwrap_err().1, "must be equal to \"item\"");
    assert!(ok(json!({"id": 1, "anything": [1, {"x": null}]})).is_ok());
    assert_eq!(ok(json!({"id": 1, "nothing": 1})).unwrap_err(), ("/nothing".into(), "is not allowed here".into()));
}

#[test]
fn keywords_of_2020_12_apply() {
    let doc = doc_31(json!({
        "Base": {"type": "object", "properties": {"a": {"type": "string"}}},
        "Closed": {
            "allOf": [{"$ref": "#/components/schemas/Base"}],
            "properties": {"b": {"type": "integer"}},
            "unevaluatedProperties": false
        },
        "Dep": {
            "type": "object",
            "dependentSchemas": {"card": {"required": ["billing"]}}
        },
        "Counted": {"type": "array", "contains": {"type": "string"}, "minContains": 2}
    }));
    let closed = schema(&doc, "/components/schemas/Closed");
    assert!(closed.validate(&json!({"a": "x", "b": 1})).is_ok(), "`a` is evaluated through allOf");
    assert_eq!(err(&closed, json!({"a": "x", "c": 1})), ("/c".into(), "unknown property `c`".into()));
    let dep = schema(&doc, "/components/schemas/Dep");
    assert!(dep.validate(&json!({"name": 1})).is_ok());
    assert_eq!(err(&dep, json!({"card": 1})).1, "missing required property `billing`");
    let counted = schema(&doc, "/components/schemas/Counted");
    assert!(counted.validate(&json!(["a", "b", 1])).is_ok());
    assert!(counted.validate(&json!(["a", 1])).is_err());
}

#[test]
fn every_keyword() {
    let doc = doc_31(json!({
        "n": {"type": "number", "minimum": 1.5, "maximum": 3, "multipleOf": 0.25},
        "i": {"type": "integer", "multipleOf": 3},
        "s": {"type": "string", "pattern": "[0-9]{2}", "minLength": 2},
        "look": {"type": "string", "pattern": "^(?!admin$)[a-z]+$"},
        "e": {"enum": [1, "two", null, [3]]},
        "arr": {"type": "array", "minItems": 1, "contains": {"type": "string"}},
        "obj": {
            "type": "object", "minProperties": 1, "maxProperties": 2,
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": {"type": "string"},
            "propertyNames": {"maxLength": 4},
            "dependentRequired": {"a": ["b"]}
        },
        "any": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["k"]}]},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]},
        "not": {"not": {"type": "string"}},
        "cond": {"if": {"properties": {"t": {"const": "a"}}}, "then": {"required": ["a"]}, "else": {"required": ["b"]}},
        "unknown_format": {"type": "string", "format": "hostname-ish"}
    }));
    let check = |name: &str, value: Value| -> Result<(), (String, String)> {
        schema(&doc, &format!("/components/schemas/{name}")).validate(&value).map_err(|e| (e.pointer, e.message))
    };
    let msg = |r: Result<(), (String, String)>| r.unwrap_err().1;

    assert!(check("n", json!(2.75)).is_ok());
    assert_eq!(msg(check("n", json!(1))), "must be at least 1.5");
    assert_eq!(msg(check("n", json!(3.25))), "must be at most 3");
    assert_eq!(msg(check("n", json!(2.1))), "must be a multiple of 0.25");
    assert!(check("i", json!(-9)).is_ok());
    assert_eq!(msg(check("i", json!(4))), "must be a multiple of 3");
    assert!(check("s", json!("ab12cd")).is_ok(), "patterns search, unanchored");
    assert_eq!(msg(check("s", json!("abc"))), "must match pattern [0-9]{2}");
    assert_eq!(msg(check("s", json!("1"))), "must be at least 2 characters long");
    assert!(check("look", json!("bob")).is_ok(), "look-ahead (ECMA-262) works");
    assert_eq!(msg(check("look", json!("admin"))), "must match pattern ^(?!admin$)[a-z]+$");
    assert!(check("e", json!(null)).is_ok());
    assert!(check("e", json!(1.0)).is_ok(), "1.0 equals 1");
    assert!(check("e", json!([3])).is_ok());
    assert_eq!(msg(check("e", json!("one"))), "must be one of 1, \"two\", null, [3]");
    assert!(check("arr", json!([1, "x"])).is_ok());
    assert_eq!(msg(check("arr", json!([]))), "must have at least 1 item");
    assert_eq!(msg(check("arr", json!([1, 2]))), "must contain at least one item matching `contains`");
    assert!(check("obj", json!({"x-a": 1, "b": "s"})).is_ok());
    assert_eq!(msg(check("obj", json!({}))), "must have at least 1 property");
    assert_eq!(msg(check("obj", json!({"a": "1", "b": "2", "c": "3"}))), "must have at most 2 properties");
    assert_eq!(check("obj", json!({"x-a": "1"})).unwrap_err(), ("/x-a".into(), "must be an integer".into()));
    assert_eq!(check("obj", json!({"b": 1})).unwrap_err(), ("/b".into(), "must be a string".into()));
    assert_eq!(msg(check("obj", json!({"toolong": "1"}))), "property name `toolong` must be at most 4 characters long");
    assert!(check("obj", json!({"a": "1"})).is_err());
    assert!(check("any", json!("x")).is_ok());
    assert!(check("any", json!({"k": 1})).is_ok());
    assert_eq!(check("any", json!({})).unwrap_err(), ("".into(), "missing required property `k`".into()));
    assert_eq!(msg(check("any", json!(1))), "must match one of the allowed schemas: must be a string; must be an object");
    assert!(check("one", json!(1)).is_ok());
    assert!(check("one", json!(2.5)).is_ok());
    assert_eq!(msg(check("one", json!(3))), "must match exactly one schema of `oneOf`, but matches both 0 and 1");
    assert_eq!(msg(check("one", json!(1.5))), "must be at least 2");
    assert!(check("not", json!(1)).is_ok());
    assert_eq!(msg(check("not", json!("s"))), "must not match the schema in `not`");
    assert!(check("cond", json!({"t": "a", "a": 1})).is_ok());
    assert!(check("cond", json!({"t": "z", "b": 1})).is_ok());
    assert_eq!(msg(check("cond", json!({"t": "a", "b": 1}))), "missing required property `a`");
    assert!(check("unknown_format", json!("not a host!")).is_ok());
}

#[test]
fn a_catastrophic_pattern_is_rejected_quickly() {
    // A backreference puts the whole pattern in the backtracking engine, where `(a|aa)+` is
    // exponential on "aaaa…b".
    let doc = doc_31(json!({"Evil": {"type": "string", "pattern": "^(a|aa)+\\1$"}}));
    let evil = schema(&doc, "/components/schemas/Evil");
    assert!(evil.validate(&json!("aaa")).is_ok());
    let input = Value::String(format!("{}b", "a".repeat(5_000)));
    let start = std::time::Instant::now();
    let e = evil.validate(&input).expect_err("must not pass");
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "took {:?}", start.elapsed());
    assert_eq!(e.message, "could not be matched against its `pattern` within the backtracking limit");
}

#[test]
fn schemas_that_cannot_compile_are_errors() {
    let doc = doc_31(json!({
        "Broken": {"type": "object", "properties": {"x": {"$ref": "#/components/schemas/Missing"}}},
        "External": {"$ref": "other.yaml#/Foo"},
        "Anchor": {"$ref": "#foo"},
        "BadPattern": {"type": "string", "pattern": "(unclosed"},
        "BadType": {"type": "strnig"},
        "Dynamic": {"$dynamicRef": "#meta"},
        "Loop": {"$ref": "#/components/schemas/Loop"},
        "AllLoop": {"allOf": [{"$ref": "#/components/schemas/AllLoop"}]},
        "AnyLoop": {"anyOf": [{"$ref": "#/components/schemas/AnyLoop"}, {"type": "string"}]},
        "NotLoop": {"allOf": [{"$ref": "#/components/schemas/NotLoopB"}], "type": "object"},
        "NotLoopB": {"not": {"$ref": "#/components/schemas/NotLoop"}},
        "NotASchema": 5
    }));
    let fails = |name: &str| match compile(&doc, Dialect::V31, &format!("/components/schemas/{name}")) {
        Ok(_) => panic!("{name} compiled"),
        Err(e) => e.0,
    };
    assert!(fails("Broken").contains("/components/schemas/Missing"), "{}", fails("Broken"));
    assert!(fails("External").contains("same document"));
    assert!(fails("Anchor").contains("anchors"));
    assert!(fails("BadPattern").contains("(unclosed"), "{}", fails("BadPattern"));
    assert!(fails("BadType").contains("strnig"), "{}", fails("BadType"));
    assert!(fails("Dynamic").contains("$dynamicRef"));
    assert!(fails("Loop").contains("refers to itself"));
    assert!(fails("AllLoop").contains("refers to itself"));
    assert!(fails("AnyLoop").contains("refers to itself"), "{}", fails("AnyLoop"));
    assert!(fails("NotLoop").contains("refers to itself"), "{}", fails("NotLoop"));
    assert!(fails("NotASchema").contains("not a schema"));
    assert!(compile(&doc, Dialect::V31, "/nope").is_err());
    // 3.0: an unknown type name is refused as well
    let doc = json!({"openapi": "3.0.3", "components": {"schemas": {"T": {"type": "file"}}}});
    assert!(compile(&doc, Dialect::V30, "/components/schemas/T").is_err());
}

#[test]
fn refs_with_escapes_and_percent_encoding() {
    let doc = doc_31(json!({
        "a/b~c": {"type": "integer"},
        "UsesEscaped": {"$ref": "#/components/schemas/a~1b~0c"},
        "Spaced name": {"type": "boolean"},
        "UsesPercent": {"$ref": "#/components/schemas/Spaced%20name"},
        "M": {"type": "object", "additionalProperties": {"type": "integer"}}
    }));
    let escaped = schema(&doc, "/components/schemas/UsesEscaped");
    assert!(escaped.validate(&json!(1)).is_ok());
    assert!(escaped.validate(&json!("1")).is_err());
    let spaced = schema(&doc, "/components/schemas/UsesPercent");
    assert_eq!(spaced.validate(&json!(1)).unwrap_err().message, "must be a boolean");
    let m = schema(&doc, "/components/schemas/M");
    let e = m.validate(&json!({"a/b~c": "x"})).unwrap_err();
    assert_eq!(e.pointer, "/a~1b~0c");
    assert_eq!(e.to_string(), "/a~1b~0c: must be an integer");
}

#[test]
fn property_shapes() {
    let doc = doc_31(json!({
        "Base": {"type": "object", "properties": {"count": {"type": "integer"}}},
        "Form": {
            "allOf": [{"$ref": "#/components/schemas/Base"}],
            "properties": {
                "ratio": {"type": ["number", "null"]},
                "flag": {"$ref": "#/components/schemas/Flag"},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "names": {"type": "array"},
                "file": {"type": "string", "format": "binary"},
                "opt": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "mixed": {"type": ["integer", "string"]},
                "nested": {"type": "object"},
                "free": {}
            }
        },
        "Flag": {"type": "boolean"}
    }));
    let form = schema(&doc, "/components/schemas/Form");
    assert_eq!(form.property_shape("count"), Some((Scalar::Integer, false)));
    assert_eq!(form.property_shape("ratio"), Some((Scalar::Number, false)));
    assert_eq!(form.property_shape("flag"), Some((Scalar::Boolean, false)));
    assert_eq!(form.property_shape("ids"), Some((Scalar::Integer, true)));
    assert_eq!(form.property_shape("names"), Some((Scalar::String, true)));
    assert_eq!(form.property_shape("file"), Some((Scalar::String, false)));
    assert_eq!(form.property_shape("opt"), Some((Scalar::Integer, false)));
    assert_eq!(form.property_shape("mixed"), Some((Scalar::String, false)));
    assert_eq!(form.property_shape("nested"), None);
    assert_eq!(form.property_shape("free"), None);
    assert_eq!(form.property_shape("absent"), None);
}

#[test]
fn compiled_schemas_are_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<Compiled>();
}

/// Compiles every parameter and request body schema of a large real document (GitHub's REST
/// API description, 3.0, ~13 MB). Run with
/// `SWITCHBOARD_BIG_SPEC=path/to/api.github.com.json cargo test --release -p switchboard --lib big_document -- --ignored --nocapture`.
#[test]
#[ignore = "needs a large OpenAPI document named by SWITCHBOARD_BIG_SPEC"]
fn big_document() {
    let Ok(path) = std::env::var("SWITCHBOARD_BIG_SPEC") else { return };
    let text = std::fs::read_to_string(path).unwrap();
    let before_parse = resident_mib();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let parsed = resident_mib();
    let dialect = Dialect::of(&doc);
    let start = std::time::Instant::now();
    let mut pointers = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = escape_token(path);
        for (method, op) in item.as_object().unwrap() {
            let Some(op) = op.as_object() else { continue };
            for (i, _) in op.get("parameters").and_then(Value::as_array).into_iter().flatten().enumerate() {
                pointers.push(format!("/paths/{path}/{method}/parameters/{i}/schema"));
            }
            if op.contains_key("requestBody") {
                let base = format!("/paths/{path}/{method}/requestBody");
                let body = resolve(&doc, &base, &mut 0).unwrap().1;
                for media in body.get("content").and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
                    pointers.push(format!("{base}/content/{}/schema", escape_token(media)));
                }
            }
        }
    }
    let mut failed = Vec::new();
    let mut compiled = Vec::new();
    for pointer in &pointers {
        match compile(&doc, dialect, pointer) {
            Ok(c) => compiled.push(c),
            Err(e) => failed.push(e.0),
        }
    }
    let compiled_all = resident_mib();
    eprintln!("{} schemas ({} failed) in {:?}", pointers.len(), failed.len(), start.elapsed());
    eprintln!(
        "resident memory: parsing the document added {:.1} MiB; compiling every schema (the document kept) added {:.1} MiB",
        parsed - before_parse,
        compiled_all - parsed
    );
    for f in failed.iter().take(10) {
        eprintln!("  {f}");
    }
    assert!(failed.is_empty());
}


/// This process's resident memory in MiB (Linux; 0 elsewhere).
fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

