//! The `var` paths of JSON-Logic rules, checked against what the rule can see where it is
//! written ([`Scope`]): a guard sees the entity, input, actor, now and the loads; a load's
//! expression only the loads before it.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// A guard: entity, input, actor, now and the loads.
    Guard,
    /// A load's `id` or `where` (the load at this position of the transition's `load`):
    /// entity, input, actor, now and the loads declared before it.
    Load(usize),
}

/// What a transition's rules see.
pub(super) struct Env<'a> {
    pub(super) package: &'a Loaded,
    pub(super) def: &'a EntityTypeDef,
    pub(super) input: Option<&'a Value>,
    pub(super) loads: &'a IndexMap<String, LoadDef>,
}

/// Fields every entity has besides its data fields (scalars).
pub(super) const META: &[&str] = ontology::RESERVED_FIELDS;

/// The actor's keys.
pub(super) const ACTOR: &[&str] = &["id", "email", "roles", "system"];

pub(super) fn is_index(segment: &str) -> bool {
    segment == "*" || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()))
}

/// `items.*.quantity` → `items[].quantity`.
pub(super) fn field_path(segments: &[&str]) -> String {
    let mut out = String::new();
    for s in segments {
        if is_index(s) {
            out.push_str("[]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}

impl Env<'_> {
    pub(super) fn check_var(&self, var: &str, scope: Scope) -> Result<(), String> {
        let segments: Vec<&str> = var.split('.').collect();
        let (root, rest) = (segments[0], &segments[1..]);
        match root {
            "entity" => entity_path(self.def, rest),
            "input" => match (self.input, rest.is_empty()) {
                (_, true) => Ok(()),
                (None, false) => Err("the transition has no input schema".into()),
                (Some(schema), false) => match schema_path(schema, rest) {
                    Ok(()) => Ok(()),
                    Err(k) => Err(format!("the input schema has no property `{}`", rest[..=k].join("."))),
                },
            },
            "actor" => match rest {
                [] => Ok(()),
                [key] if ACTOR.contains(key) => Ok(()),
                ["roles", index] if is_index(index) => Ok(()),
                ["attributes"] => Ok(()),
                ["attributes", name, rest @ ..] => {
                    let declared = self.package.tenant.typed.as_ref().map(|t| &t.user_attributes);
                    match declared.and_then(|d| d.get(*name)) {
                        None if declared.is_none() => Ok(()),
                        None => Err(format!(
                            "`{name}` is not a declared user attribute (`user_attributes:` in tenant.yaml)"
                        )),
                        Some(_) if rest.is_empty() => Ok(()),
                        Some(def)
                            if def.kind == crate::package::AttributeKind::Array
                                && rest.len() == 1
                                && is_index(rest[0]) =>
                        {
                            Ok(())
                        }
                        Some(_) => Err(format!("the user attribute `{name}` is a value, not an object")),
                    }
                }
                _ => Err("the actor has only id, email, roles, system and attributes".into()),
            },
            "now" if rest.is_empty() => Ok(()),
            "now" => Err("`now` is a timestamp (a string)".into()),
            load if self.sees_load(load, scope) => {
                let Some(def) = self.loads.get(load) else { return Ok(()) };
                let Some(loaded) = self.package.def(&def.type_name) else { return Ok(()) };
                if def.r#where.is_none() || rest.is_empty() {
                    return entity_path(loaded, rest);
                }
                match rest.split_first() {
                    Some((index, rest)) if is_index(index) => entity_path(loaded, rest),
                    _ => Err(format!(
                        "load `{load}` is a list (`where`): read an element (`{load}.0.…`) or iterate over it"
                    )),
                }
            }
            _ => Err(match scope {
                Scope::Guard => {
                    let mut names = vec!["entity", "input", "actor", "now"];
                    names.extend(self.loads.keys().map(String::as_str));
                    format!("unknown variable `{root}`; a guard sees {}", names.join(", "))
                }
                Scope::Load(position) => match self.loads.get_index_of(root) {
                    Some(i) if i == position => format!("a load cannot read itself (`{root}`)"),
                    Some(_) => format!(
                        "load `{root}` is declared after this one; a load reads only the loads declared before it"
                    ),
                    None => {
                        let mut names = vec!["entity", "input", "actor", "now"];
                        names.extend(self.loads.keys().take(position).map(String::as_str));
                        format!("unknown variable `{root}`; a load expression sees {}", names.join(", "))
                    }
                },
            }),
        }
    }

    /// Whether a rule in `scope` sees the load named `load`: a guard sees every load, a load's
    /// rules only the loads declared before it.
    pub(super) fn sees_load(&self, load: &str, scope: Scope) -> bool {
        match (self.loads.get_index_of(load), scope) {
            (Some(_), Scope::Guard) => true,
            (Some(i), Scope::Load(position)) => i < position,
            (None, _) => false,
        }
    }
}

/// Checks a path (after `entity.` or `<load>.`) against a type's fields and the entity's
/// meta fields. Array elements are reached by index (`items.0.quantity`) or, as
/// [`engine::logic::vars`] reports element variables, by `*`.
pub(super) fn entity_path(def: &EntityTypeDef, segments: &[&str]) -> Result<(), String> {
    let missing = |k: usize| format!("type `{}` has no field `{}`", def.name, field_path(&segments[..=k]));
    let Some((first, rest)) = segments.split_first() else { return Ok(()) };
    if META.contains(first) {
        return if rest.is_empty() { Ok(()) } else { Err(missing(1)) };
    }
    let mut field = def.fields.get(*first).ok_or_else(|| missing(0))?;
    for (k, segment) in rest.iter().enumerate() {
        let next = match field.kind {
            FieldKind::Array if is_index(segment) => field.items.as_deref(),
            FieldKind::Object => field.fields.as_ref().and_then(|f| f.get(*segment)),
            _ => None,
        };
        field = next.ok_or_else(|| missing(k + 1))?;
    }
    Ok(())
}

/// Checks a path (after `input.`) against a JSON Schema's `properties` (and `items` for an
/// index). A part of the schema that does not list its properties (or allows others through
/// `additionalProperties`/`patternProperties`, or combines schemas) is not checked further.
/// `Err(k)`: the `k`-th segment is not there.
pub(super) fn schema_path(schema: &Value, segments: &[&str]) -> Result<(), usize> {
    let mut current = schema;
    for (k, segment) in segments.iter().enumerate() {
        let Some(obj) = current.as_object() else { return Ok(()) };
        let open = ["allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "patternProperties"]
            .iter()
            .any(|key| obj.contains_key(*key))
            || obj.get("additionalProperties").is_some_and(|a| a.is_object() || a == &Value::Bool(true));
        if open {
            return Ok(());
        }
        if let Some(next) = obj.get("properties").and_then(Value::as_object).and_then(|p| p.get(*segment)) {
            current = next;
            continue;
        }
        if is_index(segment) {
            if let Some(items) = obj.get("items") {
                current = items;
                continue;
            }
        }
        if obj.contains_key("properties") || obj.contains_key("items") {
            return Err(k);
        }
        return Ok(());
    }
    Ok(())
}
