//! The checks that need the whole package, each a method of the validation pushing problems
//! with file and pointer: the tenant file, the types (compiled by the `ontology` and `engine`
//! crates), each workflow (states, transitions, reachability, loads, rules, timers, four-eyes),
//! who can fire each transition, scripts, webhooks, and the sample data.

use super::*;

impl Validation {
    // -----------------------------------------------------------------------------------------
    // tenant.yaml

    pub(super) fn check_tenant(&mut self, package: &Loaded) {
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        if !valid_slug(&tenant.slug) {
            self.error(&file, "/slug", format!("`{}` is not a slug: {}", tenant.slug, engine::names::SLUG_RULE));
        }
        if let Some(Err(e)) = tenant.time_zone.as_deref().map(engine::dates::zone) {
            self.error(&file, "/time_zone", e.to_string());
        }
        let roles: HashSet<&str> = tenant.roles.keys().map(String::as_str).collect();
        for (i, user) in tenant.users.iter().enumerate() {
            for (j, role) in user.roles.iter().enumerate() {
                if !roles.contains(role.as_str()) {
                    self.error(&file, &format!("/users/{i}/roles/{j}"), format!("unknown role `{role}`"));
                }
            }
        }
        // Emails are unique per tenant, ignoring case (as the `users` table has them).
        let mut emails: HashMap<String, usize> = HashMap::new();
        for (i, user) in tenant.users.iter().enumerate() {
            match emails.get(&user.email.to_lowercase()) {
                Some(first) => self.error(
                    &file,
                    &format!("/users/{i}/email"),
                    format!("email `{}` is already used by /users/{first}", user.email),
                ),
                None => {
                    emails.insert(user.email.to_lowercase(), i);
                }
            }
        }
        // User attributes: declarations, users' values, what record rules read.
        let names: HashSet<&str> = package.names.iter().map(String::as_str).collect();
        let rules = package.primary_types().filter_map(|t| t.def()).map(|d| (d.name.as_str(), &d.record_rules));
        for (file, pointer, message) in crate::compile::user_attribute_problems(tenant, &names, rules) {
            let file = if file == "tenant.yaml" { package.tenant.rel.clone() } else { file };
            self.error(&file, &pointer, message);
        }
        // A reference given as `"@key"` names a sample row of the referenced type (when the
        // package has sample data: a package posted to the API has none).
        let keyed: HashMap<&str, &str> = package
            .data
            .iter()
            .flat_map(|d| d.typed.iter().flatten())
            .filter_map(|r| Some((r.key.as_deref()?, r.type_name.as_str())))
            .collect();
        let users = if package.data.is_empty() { &[][..] } else { &tenant.users[..] };
        for (i, user) in users.iter().enumerate() {
            for (name, value) in &user.attributes {
                let Some(def) = tenant.user_attributes.get(name) else { continue };
                let (Some(to), Some(key)) = (&def.to, value.as_str().and_then(|s| s.strip_prefix('@'))) else {
                    continue;
                };
                if key.is_empty() {
                    continue;
                }
                match keyed.get(key) {
                    Some(t) if t == to => {}
                    Some(t) => self.error(
                        &file,
                        &format!("/users/{i}/attributes/{}", esc(name)),
                        format!("`@{key}` is a sample `{t}`, not a `{to}`"),
                    ),
                    None => self.error(
                        &file,
                        &format!("/users/{i}/attributes/{}", esc(name)),
                        format!("no sample row has the key `{key}` (data/*.yaml)"),
                    ),
                }
            }
        }
        for name in tenant.terminology.keys() {
            if !package.names.contains(name) {
                self.error(&file, &format!("/terminology/{}", esc(name)), format!("unknown type `{name}`"));
            }
        }
        // Roles without permissions may do everything: fine for a package that declares none,
        // an oversight when others do.
        if tenant.roles.values().any(|r| r.permissions.is_some()) {
            for role in tenant.roles.iter().filter(|(_, d)| d.permissions.is_none()).map(|(r, _)| r) {
                self.push(
                    Severity::Warning,
                    &file,
                    &format!("/roles/{}", esc(role)),
                    format!("role `{role}` declares no permissions while other roles do: it may do everything to every type"),
                );
            }
        }
        // CSV export is its own permission: a package whose roles grant `view` and never `export`
        // has no role that can download CSV any more.
        let grants =
            |a: Action| tenant.roles.values().flat_map(|r| r.permissions.iter().flatten()).any(|(_, x)| x.contains(&a));
        if grants(Action::View) && !grants(Action::Export) {
            self.push(
                Severity::Warning,
                &file,
                "/roles",
                "no role is granted `export`: only roles without `permissions` can export CSV (`view` does not include it)"
                    .to_string(),
            );
        }
        for (role, def) in &tenant.roles {
            for name in def.permissions.iter().flat_map(|p| p.keys()) {
                if name != "*" && !package.names.contains(name) {
                    let path = format!("/roles/{}/permissions/{}", esc(role), esc(name));
                    self.error(&file, &path, format!("unknown type `{name}`"));
                }
            }
        }
    }

    /// `roles.<role>.create.<type>`: the type exists and the role may create it, the fields
    /// named are data fields of the type a client can set, `fields` and `except` are not both
    /// given, and the rule compiles.
    pub(super) fn check_create_rules(&mut self, package: &Loaded, limits: &Limits) {
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        let permissions =
            Permissions::new(tenant.roles.iter().map(|(role, def)| (role.as_str(), def.permissions.as_ref())));
        for (role, def) in &tenant.roles {
            for (type_name, rule) in def.create.iter().flatten() {
                let at = format!("/roles/{}/create/{}", esc(role), esc(type_name));
                if !package.names.contains(type_name) {
                    self.error(&file, &at, format!("unknown type `{type_name}`"));
                    continue;
                }
                if !permissions.allows(std::slice::from_ref(role), false, type_name, Action::Create) {
                    self.push(
                        Severity::Warning,
                        &file,
                        &at,
                        format!("role `{role}` may not create `{type_name}` (no `create` permission): these rules never apply"),
                    );
                }
                if rule.message.is_some() && rule.rule.is_none() {
                    self.error(&file, &format!("{at}/message"), "a `message` without a `rule`: say what must hold");
                }
                let Some(ty) = package.def(type_name) else { continue };
                if let Some(logic) = &rule.rule {
                    // What a create condition reads: the new entity, the actor, now (as a guard).
                    let loads = IndexMap::new();
                    let env = Env { package, def: ty, input: None, loads: &loads };
                    self.check_rule(&file, &format!("{at}/rule"), &env, Scope::Guard, logic);
                }
                let lists = [("fields", rule.fields.as_deref().unwrap_or_default()), ("except", &rule.except[..])];
                for (key, list) in lists {
                    for (i, field) in list.iter().enumerate() {
                        let pointer = format!("{at}/{key}/{i}");
                        match ty.fields.iter().find(|(name, _)| name.as_str() == field) {
                            None => self.error(&file, &pointer, format!("`{field}` is not a field of `{type_name}`")),
                            Some((_, f)) if f.generated => self.error(
                                &file,
                                &pointer,
                                format!("`{field}` is generated: no client sets it, whatever its roles"),
                            ),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        let roles = tenant.roles.iter().filter_map(|(name, r)| Some((name.as_str(), r.create.as_ref()?)));
        let (_, errors) = Permissions::new(std::iter::empty()).with_create_rules(roles, &package.named, limits);
        for e in errors {
            self.error(&file, &e.pointer, e.message);
        }
    }

    // -----------------------------------------------------------------------------------------
    // types/*.yaml: what the ontology cannot say for a single type.

    pub(super) fn check_types(&mut self, package: &Loaded) {
        for ty in package.primary_types() {
            let Some(def) = ty.def() else { continue };
            let file = ty.parsed.rel.clone();
            // Record rules: for declared roles that may view the type (what a rule says is
            // compiled, with its paths checked, by the engine).
            if let Some(tenant) = &package.tenant.typed {
                let permissions =
                    Permissions::new(tenant.roles.iter().map(|(role, def)| (role.as_str(), def.permissions.as_ref())));
                for role in def.record_rules.keys() {
                    let pointer = format!("/record_rules/{}", esc(role));
                    if !tenant.roles.contains_key(role) {
                        self.error(&file, &pointer, format!("unknown role `{role}` (not declared in tenant.yaml)"));
                    } else if !permissions.allows(std::slice::from_ref(role), false, def.name.as_str(), Action::View) {
                        self.push(
                            Severity::Warning,
                            &file,
                            &pointer,
                            format!("role `{role}` may not view `{}`: its record rule has no effect", def.name),
                        );
                    }
                }
            }
            // A user field's role is one the package declares.
            if let Some(tenant) = &package.tenant.typed {
                let mut roles = Vec::new();
                user_roles(&def.fields, "/fields", &mut roles);
                for (pointer, role) in roles {
                    if !tenant.roles.contains_key(&role) {
                        self.error(
                            &file,
                            &format!("{pointer}/role"),
                            format!("unknown role `{role}` (not declared in tenant.yaml)"),
                        );
                    }
                }
            }
            let mut refs = Vec::new();
            references(&def.fields, "/fields", &mut refs);
            for (pointer, to) in refs {
                if !package.names.contains(to.as_str()) {
                    self.error(&file, &format!("{pointer}/to"), format!("unknown type `{to}`"));
                }
            }
            // Parsed here rather than left to the ontology, which stops at a type's first
            // problem: a field error must not hide a broken template.
            let templates = [
                ("/title", "title", def.title.as_deref()),
                ("/number/template", "number.template", def.number.as_ref().map(|n| n.template.as_str())),
            ];
            for (pointer, name, source) in templates {
                match source.map(|s| Template::parse(name, s)) {
                    Some(Err(e)) => {
                        let at = Template::error_position(source.unwrap_or_default(), &e);
                        self.error_at(&file, pointer, at, format!("template does not parse: {e}"));
                    }
                    Some(Ok(template)) => {
                        let number = name != "title";
                        for var in template.variables() {
                            if let Err(message) = template_var(def, &var, number) {
                                self.error(&file, pointer, format!("template reads `{var}`: {message}"));
                            }
                        }
                        for var in template.titled_variables() {
                            let field = def.fields.get(var.as_str());
                            let message = if number {
                                "`title_of` names a reference by its entity's title in a `title` only; a number \
                                 is rendered once, at creation"
                                    .to_string()
                            } else if field.is_some_and(|f| f.kind == FieldKind::Reference) {
                                continue;
                            } else if field.is_some() {
                                format!("`{var} | title_of`: `{var}` is not a reference field (`title_of` names the entity a reference field holds)")
                            } else {
                                // Reported as an unknown field above.
                                continue;
                            };
                            self.error(&file, pointer, message);
                        }
                    }
                    None => {}
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The compilers of the ontology and the engine.

    /// Compiles the types and workflows that parsed. A type that does not compile (or whose
    /// file does not parse) is replaced by a stub with no fields but its workflow, so the other
    /// types and every workflow are still compiled; the stubs' own consequences (unknown types,
    /// missing `where` fields) are checked here instead, and filtered out of the engine's errors.
    pub(super) fn compile(&mut self, package: &Loaded, limits: &Limits) -> Option<Compiled> {
        let mut defs = Vec::new();
        let mut stubs: HashSet<String> = HashSet::new();
        for ty in package.primary_types() {
            match ty.def() {
                Some(def) => match CompiledType::compile(def.clone()) {
                    Ok(_) => defs.push(def.clone()),
                    Err(e) => {
                        for e in type_errors(def, e) {
                            self.ontology_error(package, e);
                        }
                        stubs.insert(def.name.to_string());
                        defs.push(stub(def.name.clone(), def.workflow.clone()));
                    }
                },
                None => {
                    if let Some(name) = ty.name.as_deref().and_then(|n| n.parse::<TypeName>().ok()) {
                        stubs.insert(name.to_string());
                        defs.push(stub(name, None));
                    }
                }
            }
        }
        // Types referenced but declared nowhere (already reported) become stubs too.
        let mut missing = Vec::new();
        for def in &defs {
            let mut refs = Vec::new();
            references(&def.fields, "", &mut refs);
            missing.extend(refs.into_iter().map(|(_, to)| to));
        }
        for to in missing {
            if !defs.iter().any(|d| d.name == to) {
                stubs.insert(to.to_string());
                defs.push(stub(to, None));
            }
        }

        let ontology = match ontology::compile_types(defs) {
            Ok(o) => o,
            Err(errors) => {
                for e in errors {
                    self.ontology_error(package, e);
                }
                return None;
            }
        };
        if let Err(errors) = CompiledTenant::compile_with(ontology.clone(), &package.rules, limits) {
            for e in errors {
                self.engine_error(package, e);
            }
        }
        Some(Compiled { ontology, stubs })
    }

    pub(super) fn ontology_error(&mut self, package: &Loaded, e: OntologyError) {
        match e {
            OntologyError::InvalidField { type_name, path, message } => {
                let pointer = crate::compile::ontology_pointer(&path);
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            // Parsed (and reported) by `check_types`; references and duplicates likewise.
            OntologyError::Template { .. }
            | OntologyError::UnknownReference { .. }
            | OntologyError::DuplicateType { .. } => {}
            OntologyError::InvalidName { kind, value, reason } => {
                self.error("types", "", format!("invalid {kind} name {value:?}: {reason}"));
            }
            other => {
                let text = other.to_string();
                let file = named_type(&text).map(|t| package.file_of(t)).unwrap_or_else(|| "types".into());
                self.error(&file, "", text);
            }
        }
    }

    pub(super) fn engine_error(&mut self, package: &Loaded, e: EngineError) {
        let tr = |t: &str| format!("/workflow/transitions/{}", esc(t));
        match e {
            // Parsed (and reported, with its path) when the file was read.
            EngineError::WorkflowSyntax { type_name, message } => {
                if package.type_named(&type_name).is_some_and(|t| t.workflow.is_some()) {
                    self.error(&package.file_of(&type_name), "/workflow", message);
                }
            }
            EngineError::InitialStates { type_name, count } => self.error(
                &package.file_of(&type_name),
                "/workflow/states",
                format!("the workflow has {count} initial states; it needs exactly one"),
            ),
            EngineError::UnknownState { type_name, transition, field, state } => {
                let index = package
                    .type_named(&type_name)
                    .and_then(|t| t.workflow.as_ref())
                    .and_then(|w| w.transitions.get(&transition))
                    .and_then(|t| t.from.iter().position(|s| *s == state));
                let pointer = match (field, index) {
                    ("from", Some(i)) => format!("{}/from/{i}", tr(&transition)),
                    (field, _) => format!("{}/{field}", tr(&transition)),
                };
                self.error(&package.file_of(&type_name), &pointer, format!("unknown state `{state}`"));
            }
            EngineError::NoRoles { type_name, transition } => self.error(
                &package.file_of(&type_name),
                &format!("{}/roles", tr(&transition)),
                "no role can fire this transition: its role list is empty",
            ),
            EngineError::CreateTransition { type_name, transition, field, message } => {
                self.error(&package.file_of(&type_name), &format!("{}/{field}", tr(&transition)), message)
            }
            EngineError::NoFromStates { type_name, transition } => self.error(
                &package.file_of(&type_name),
                &format!("{}/from", tr(&transition)),
                "`from` is empty: the transition can never fire",
            ),
            EngineError::Guard { type_name, transition, index, message } => {
                self.error(&package.file_of(&type_name), &format!("{}/guards/{index}/rule", tr(&transition)), message)
            }
            EngineError::Script { type_name, transition, line, column, message } => self.error_at(
                &package.file_of(&type_name),
                &format!("{}/script", tr(&transition)),
                (line, column),
                format!("script does not compile: {message}"),
            ),
            EngineError::InputSchema { type_name, transition, message } => self.error(
                &package.file_of(&type_name),
                &format!("{}/input", tr(&transition)),
                format!("invalid input schema: {message}"),
            ),
            EngineError::Load { type_name, transition, load, message } => {
                let base = format!("{}/load/{}", tr(&transition), esc(&load));
                // Checked by `check_workflow` (against every declared type, stubs included).
                if message.starts_with("unknown type") || message.starts_with("`where`: ") {
                    return;
                }
                // A load reading a later load (or itself): reported by the `var` checks.
                if message.contains(": reads `") {
                    return;
                }
                let (pointer, message) = if let Some(rest) = message.strip_prefix("id: ") {
                    (format!("{base}/id"), rest.to_string())
                } else if let Some((field, rest)) = message.strip_prefix("where.").and_then(|m| m.split_once(": ")) {
                    (format!("{base}/where/{}", esc(field)), rest.to_string())
                } else {
                    (base, message)
                };
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            EngineError::Rule { rule, message } => {
                self.error(&package.tenant.rel, &format!("/rules/{}", esc(&rule)), message);
            }
            EngineError::RecordRule { type_name, role, message } => {
                self.error(&package.file_of(&type_name), &format!("/record_rules/{}", esc(&role)), message);
            }
            EngineError::FourEyes { type_name, transition, entry } => {
                let index = package
                    .type_named(&type_name)
                    .and_then(|t| t.workflow.as_ref())
                    .and_then(|w| w.transitions.get(&transition))
                    .and_then(|t| t.four_eyes.iter().position(|e| *e == entry));
                let pointer = match index {
                    Some(i) => format!("{}/four_eyes/{i}", tr(&transition)),
                    None => format!("{}/four_eyes", tr(&transition)),
                };
                let message = format!("`{entry}` is neither `creator` nor a transition of this workflow");
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            EngineError::State { type_name, state, message } => {
                let base = format!("/workflow/states/{}", esc(&state));
                // Checked by `check_workflow`, which knows the fields of types that do not compile.
                if message.starts_with("editable: ") {
                    return;
                }
                let timer = message.strip_prefix("timer ").and_then(|m| m.split_once(": "));
                let (pointer, message) = match timer {
                    Some((i, rest)) if i.bytes().all(|b| b.is_ascii_digit()) => {
                        let key = if rest.starts_with("`after") {
                            "after"
                        } else if rest.starts_with("invalid input") {
                            "input"
                        } else {
                            "transition"
                        };
                        (format!("{base}/timers/{i}/{key}"), rest.to_string())
                    }
                    _ => (base, message),
                };
                self.error(&package.file_of(&type_name), &pointer, message);
            }
            other => {
                let text = other.to_string();
                let file = named_type(&text).map(|t| package.file_of(t)).unwrap_or_else(|| "types".into());
                self.error(&file, "/workflow", text);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workflows.

    pub(super) fn check_workflow(&mut self, package: &Loaded, ty: &TypeFile) {
        let (Some(def), Some(wf)) = (ty.def(), ty.workflow.as_ref()) else { return };
        let file = ty.parsed.rel.clone();
        let roles = package.roles();

        // Names: a state or transition name is an identifier (it is a path segment of the API).
        let (states, transitions) = (wf.states.keys().map(String::as_str), wf.transitions.keys().map(String::as_str));
        for (pointer, problem) in crate::compile::workflow_name_problems(states, transitions) {
            self.error(&file, &pointer, problem);
        }

        // Roles.
        for (name, t) in &wf.transitions {
            let Some(roles) = &roles else { break };
            let base = format!("/workflow/transitions/{}", esc(name));
            let mut any_known = false;
            for (i, role) in t.roles.iter().enumerate() {
                if roles.contains(role.as_str()) {
                    any_known = true;
                } else {
                    self.error(&file, &format!("{base}/roles/{i}"), format!("unknown role `{role}`"));
                }
            }
            if !t.roles.is_empty() && !any_known {
                let message = "no role can fire this transition: none of its roles is declared in tenant.yaml";
                self.error(&file, &format!("{base}/roles"), message);
            }
        }

        // States: editable fields (the engine's check is skipped: it cannot tell a type that
        // does not compile from one without the field) and roles. Timers are the engine's.
        for (state, s) in &wf.states {
            let base = format!("/workflow/states/{}", esc(state));
            if let Some(editable) = &s.editable {
                for (i, field) in editable.fields.iter().enumerate() {
                    if !def.fields.contains_key(field.as_str()) {
                        self.error(
                            &file,
                            &format!("{base}/editable/fields/{i}"),
                            format!("type `{}` has no field `{field}`", def.name),
                        );
                    }
                }
                if let Some(roles) = &roles {
                    for (i, role) in editable.roles.iter().enumerate() {
                        if !roles.contains(role.as_str()) {
                            self.error(&file, &format!("{base}/editable/roles/{i}"), format!("unknown role `{role}`"));
                        }
                    }
                }
            }
        }

        // Reachability and dead ends (warnings). The implicit workflow (and any workflow
        // without transitions) is a single resting state, not a dead end.
        let initials: Vec<&String> =
            wf.states.iter().filter(|(_, s)| s.kind == StateKind::Initial).map(|(n, _)| n).collect();
        if let ([initial], true) = (initials.as_slice(), ty.explicit_workflow && !wf.transitions.is_empty()) {
            let mut reached: HashSet<&str> = HashSet::from([initial.as_str()]);
            loop {
                let before = reached.len();
                for t in wf.transitions.values() {
                    if t.from.iter().any(|s| reached.contains(s.as_str())) {
                        reached.insert(t.to.as_str());
                    }
                }
                if reached.len() == before {
                    break;
                }
            }
            for (state, s) in &wf.states {
                let pointer = format!("/workflow/states/{}", esc(state));
                // Both are errors: an unreachable state or a dead end is a workflow bug (mark a
                // resting state `terminal`; remove a state nothing leads to).
                if !reached.contains(state.as_str()) {
                    self.error(
                        &file,
                        &pointer,
                        format!("state `{state}` cannot be reached from the initial state `{initial}`"),
                    );
                }
                let leaves = wf.transitions.values().any(|t| t.from.contains(state));
                if s.kind != StateKind::Terminal && !leaves {
                    self.error(&file, &pointer, format!("state `{state}` is not terminal but no transition leaves it"));
                }
            }
        }

        // Loads and rules.
        for (name, t) in &wf.transitions {
            let base = format!("/workflow/transitions/{}", esc(name));
            let env = Env { package, def, input: t.input.as_ref(), loads: &t.load };
            for (position, (load_name, load)) in t.load.iter().enumerate() {
                let lbase = format!("{base}/load/{}", esc(load_name));
                if !package.names.contains(&load.type_name) {
                    self.error(&file, &format!("{lbase}/type"), format!("unknown type `{}`", load.type_name));
                }
                if let Some(id) = &load.id {
                    self.check_rule(&file, &format!("{lbase}/id"), &env, Scope::Load(position), id);
                }
                for (key, rule) in load.r#where.iter().flatten() {
                    let pointer = format!("{lbase}/where/{}", esc(key));
                    if let Some(loaded) = package.def(&load.type_name) {
                        if key != "id" && key != "state" && !loaded.fields.contains_key(key.as_str()) {
                            self.error(&file, &pointer, format!("type `{}` has no field `{key}`", load.type_name));
                        }
                    }
                    self.check_rule(&file, &pointer, &env, Scope::Load(position), rule);
                }
            }
            for (i, guard) in t.guards.iter().enumerate() {
                self.check_rule(&file, &format!("{base}/guards/{i}/rule"), &env, Scope::Guard, &guard.rule);
            }
        }
    }

    /// A state marked `terminal` that a transition leaves: a workflow bug (the state is not
    /// terminal, or the transition is wrong).
    pub(super) fn check_terminal_states(&mut self, ty: &TypeFile) {
        let Some(wf) = ty.workflow.as_ref() else { return };
        for (state, _) in wf.states.iter().filter(|(_, s)| s.kind == StateKind::Terminal) {
            let leaving: Vec<String> =
                wf.transitions.iter().filter(|(_, t)| t.from.contains(state)).map(|(n, _)| format!("`{n}`")).collect();
            if !leaving.is_empty() {
                let message = format!("state `{state}` is terminal but transitions leave it: {}", leaving.join(", "));
                self.error(&ty.parsed.rel, &format!("/workflow/states/{}", esc(state)), message);
            }
        }
    }

    /// A transition whose roles all lack `view` of the type (or are undeclared): no user
    /// holding one of them can fire it (firing needs one of the roles and `view`). Transitions
    /// none of whose roles is declared are reported by `check_workflow`.
    pub(super) fn check_firing_roles(&mut self, package: &Loaded, ty: &TypeFile) {
        let (Some(tenant), Some(wf), Some(name)) = (&package.tenant.typed, &ty.workflow, &ty.name) else { return };
        let permissions =
            Permissions::new(tenant.roles.iter().map(|(role, def)| (role.as_str(), def.permissions.as_ref())));
        for (transition, t) in &wf.transitions {
            if !t.roles.iter().any(|r| tenant.roles.contains_key(r)) {
                continue;
            }
            let mut reasons = Vec::new();
            for role in &t.roles {
                if !tenant.roles.contains_key(role) {
                    reasons.push(format!("`{role}` is not declared in tenant.yaml"));
                } else if permissions.allows(std::slice::from_ref(role), false, name, Action::View) {
                    break;
                } else {
                    reasons.push(format!("`{role}` may not view `{name}`"));
                }
            }
            if reasons.len() == t.roles.len() {
                let pointer = format!("/workflow/transitions/{}/roles", esc(transition));
                let message = format!("no role can fire this transition: {}", reasons.join(", "));
                self.error(&ty.parsed.rel, &pointer, message);
            }
        }
    }

    /// The string literals scripts pass to `create` (a type) and `transition` (a transition
    /// of the row's type, when the row is `entity` or a load, else of some type), and the
    /// events they `emit` (for `check_webhooks`). Scripts that do not compile are the engine's.
    pub(super) fn check_scripts(&mut self, package: &Loaded, ty: &TypeFile, scripts: &ScriptEngine) {
        let Some(wf) = ty.workflow.as_ref() else {
            self.emitted_unknown = true;
            return;
        };
        for (name, t) in &wf.transitions {
            self.emitted.extend(t.events.iter().cloned());
            for (i, event) in t.events.iter().enumerate() {
                if event == engine::store::ENTITY_CHANGED {
                    let pointer = format!("/workflow/transitions/{}/events/{i}", esc(name));
                    let message = format!(
                        "`{event}` is the built-in event of a change that emits none of its own: choose another name"
                    );
                    self.error(&ty.parsed.rel, &pointer, message);
                }
            }
            let Some(source) = &t.script else { continue };
            let loads: Vec<&str> = t.load.keys().map(String::as_str).collect();
            let Ok(script) = scripts.compile(source, &loads) else {
                self.emitted_unknown = true;
                continue;
            };
            let pointer = format!("/workflow/transitions/{}/script", esc(name));
            for call in script.effect_calls() {
                let at = (call.line, call.column);
                match (call.function.as_str(), call.args.as_slice()) {
                    ("emit", [CallArg::Str(event), ..]) => {
                        self.emitted.insert(event.clone());
                    }
                    ("emit", _) => self.emitted_unknown = true,
                    ("create", [CallArg::Str(type_name), ..]) if !package.names.contains(type_name) => {
                        let message = format!("create(\"{type_name}\", …): unknown type `{type_name}`");
                        self.error_at(&ty.parsed.rel, &pointer, at, message);
                    }
                    ("transition", [row, CallArg::Str(transition), ..]) => {
                        if let Err(message) = script_transition(package, ty, t, row, transition) {
                            let message = format!("transition(…, \"{transition}\"): {message}");
                            self.error_at(&ty.parsed.rel, &pointer, at, message);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// `webhooks:` of `tenant.yaml`: unique names, http(s) URLs, event patterns as the API
    /// accepts them, and (a warning) patterns no event of the package matches.
    pub(super) fn check_webhooks(&mut self, package: &Loaded) {
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        // Every type's entities are created, edited and deleted; transitions and scripts add theirs.
        let mut emitted = self.emitted.clone();
        for name in &package.names {
            for what in ["created", "updated", "deleted"] {
                emitted.insert(format!("{name}.{what}"));
            }
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, hook) in tenant.webhooks.iter().enumerate() {
            let base = format!("/webhooks/{i}");
            if let Some(first) = names.get(hook.name.as_str()) {
                let message = format!("webhook name `{}` is already used by /webhooks/{first}", hook.name);
                self.error(&file, &format!("{base}/name"), message);
            } else {
                names.insert(&hook.name, i);
            }
            if let Err(message) = webhook_url(&hook.url) {
                self.error(&file, &format!("{base}/url"), format!("`{}`: {message}", hook.url));
            }
            if let Some(message) = webhook_secret_env_problem(&tenant.slug, &hook.secret_env) {
                self.error(&file, &format!("{base}/secret_env"), message);
            }
            if hook.events.is_empty() {
                self.error(&file, &format!("{base}/events"), "at least one event name or pattern is required");
            }
            for (j, pattern) in hook.events.iter().enumerate() {
                let pointer = format!("{base}/events/{j}");
                match event_pattern(pattern) {
                    None => self.error(&file, &pointer, format!("`{pattern}` is not an event name, `prefix.*` or `*`")),
                    Some(matches) if !self.emitted_unknown && !emitted.iter().any(|e| matches(e)) => self.push(
                        Severity::Warning,
                        &file,
                        &pointer,
                        format!(
                            "no event of the package matches `{pattern}` (events are `<type>.created`, `.updated`, \
                             `.deleted`, the transitions' `events` and the scripts' `emit`s)"
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// Checks every `var` path of a rule against what the context holds.
    /// Named rules are expanded first (a rule that does not expand is the engine's error), so
    /// their `var`s are read where they are used, inside iterations included.
    pub(super) fn check_rule(&mut self, file: &str, pointer: &str, env: &Env<'_>, scope: Scope, rule: &Value) {
        let direct = engine::logic::vars(rule);
        let expanded = env.package.named.expand(rule).map(|r| engine::logic::vars(&r)).unwrap_or_default();
        let mut used = Vec::new();
        named_rules(rule, &mut used);
        let through = match used.as_slice() {
            [] => String::new(),
            [one] => format!(" (read by rule `{one}`)"),
            many => format!(
                " (read by one of the rules {})",
                many.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut all = direct.clone();
        all.extend(expanded.into_iter().filter(|v| !direct.contains(v)));
        for var in all {
            if let Err(message) = env.check_var(&var, scope) {
                let suffix = if direct.contains(&var) { "" } else { through.as_str() };
                self.error(file, pointer, format!("`{var}`: {message}{suffix}"));
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // data/*.yaml

    pub(super) fn check_data(&mut self, package: &Loaded, compiled: Option<&Compiled>) {
        // A user field of a sample row may name one of the package's users by e-mail.
        let package_users: HashSet<String> =
            package.tenant.typed.iter().flat_map(|t| t.users.iter().map(|u| u.email.to_lowercase())).collect();
        let mut keys: HashMap<&str, String> = HashMap::new();
        for file in &package.data {
            for (i, row) in file.typed.iter().flatten().enumerate() {
                if let Some(key) = &row.key {
                    let here = format!("{}#{i}", file.rel);
                    if let Some(first) = keys.get(key.as_str()) {
                        let message = format!("sample key `{key}` is already used by {first}");
                        self.error(&file.rel, &format!("/{i}/key"), message);
                    } else {
                        keys.insert(key, here);
                    }
                }
            }
        }
        for file in &package.data {
            for (i, row) in file.typed.iter().flatten().enumerate() {
                let Some(ty) = package.type_named(&row.type_name) else {
                    self.error(&file.rel, &format!("/{i}/type"), format!("unknown type `{}`", row.type_name));
                    continue;
                };
                if let (Some(state), Some(wf)) = (&row.state, &ty.workflow) {
                    if !wf.states.contains_key(state) {
                        let message = format!("unknown state `{state}` of type `{}`", row.type_name);
                        self.error(&file.rel, &format!("/{i}/state"), message);
                    }
                }
                let mut unknown = Vec::new();
                sample_keys(&row.data, &format!("/{i}/data"), &keys, &mut unknown);
                for (pointer, key) in unknown {
                    self.error(&file.rel, &pointer, format!("unknown sample key `@{key}`"));
                }
                let Some(compiled) =
                    compiled.filter(|c| !c.stubs.contains(&row.type_name)).and_then(|c| c.ontology.get(&row.type_name))
                else {
                    continue;
                };
                let mut data = with_placeholder_ids(&row.data);
                for (pointer, email) in user_emails(compiled, &mut data, &package_users, &format!("/{i}/data")) {
                    self.error(
                        &file.rel,
                        &pointer,
                        format!("no user of the package has the e-mail {email} (users: in tenant.yaml)"),
                    );
                }
                compiled.apply_defaults(&mut data);
                if let Err(errors) = compiled.prepare(&mut data) {
                    for e in errors {
                        self.error(&file.rel, &format!("/{i}/data{}", e.path), e.message);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Append-only types (`immutable: true`).

impl Validation {
    /// What an append-only type may not declare: transitions (each would change its entities),
    /// `editable` states, timers (they fire transitions), the `edit` or `delete` permission of a
    /// role naming it (`*` is not refused: the server refuses those actions on it anyway), and
    /// `lock: true` loads of it in any transition (a lock is for writing to the row).
    pub(super) fn check_immutable(&mut self, package: &Loaded) {
        const WHY: &str = "is append-only (`immutable: true`)";
        for ty in package.primary_types() {
            let (Some(def), Some(wf)) = (ty.def(), ty.workflow.as_ref()) else { continue };
            let file = ty.parsed.rel.clone();
            if def.immutable {
                let name = &def.name;
                for transition in wf.transitions.keys() {
                    self.error(
                        &file,
                        &format!("/workflow/transitions/{}", esc(transition)),
                        format!(
                            "type `{name}` {WHY}: it can have no transitions (a transition changes its entities); \
                             remove the transition or the marking"
                        ),
                    );
                }
                for (state, s) in &wf.states {
                    let base = format!("/workflow/states/{}", esc(state));
                    if s.editable.is_some() {
                        self.error(
                            &file,
                            &format!("{base}/editable"),
                            format!("type `{name}` {WHY}: no state can declare `editable` fields"),
                        );
                    }
                    if !s.timers.is_empty() {
                        self.error(
                            &file,
                            &format!("{base}/timers"),
                            format!("type `{name}` {WHY}: no state can declare timers (they fire transitions)"),
                        );
                    }
                }
            }
            for (transition, t) in &wf.transitions {
                for (load_name, load) in t.load.iter().filter(|(_, l)| l.lock) {
                    if package.def(&load.type_name).is_some_and(|d| d.immutable) {
                        let pointer = format!("/workflow/transitions/{}/load/{}/lock", esc(transition), esc(load_name));
                        self.error(
                            &file,
                            &pointer,
                            format!(
                                "type `{}` {WHY}: a load of it cannot be locked (`lock: true` is for changing the \
                                 rows, and its entities never change)",
                                load.type_name
                            ),
                        );
                    }
                }
            }
        }
        let Some(tenant) = &package.tenant.typed else { return };
        let file = package.tenant.rel.clone();
        for (role, def) in &tenant.roles {
            for (type_name, actions) in def.permissions.iter().flatten() {
                if !package.def(type_name).is_some_and(|d| d.immutable) {
                    continue;
                }
                for (i, action) in actions.iter().enumerate() {
                    if matches!(action, Action::Edit | Action::Delete) {
                        let pointer = format!("/roles/{}/permissions/{}/{i}", esc(role), esc(type_name));
                        let action = action.as_str();
                        self.error(
                            &file,
                            &pointer,
                            format!("type `{type_name}` {WHY}: `{action}` cannot be granted on it"),
                        );
                    }
                }
            }
        }
    }
}

impl Validation {
    // -----------------------------------------------------------------------------------------
    // decisions/*.yaml

    /// The decision tables: each compiles (types of inputs, outputs and cells, the hit policy's
    /// needs), the static analysis of its rows (overlaps under `unique`, unreachable rows under
    /// `first`: errors; a missing default: a warning), `rows_from` names a type of the package
    /// with the inputs and outputs as fields, and every table a guard or load calls with
    /// `decide` exists.
    pub(super) fn check_decisions(&mut self, dir: &Path, package: &Loaded, scripts: &ScriptEngine) {
        let folder = dir.join("decisions");
        let mut names: HashSet<String> = HashSet::new();
        if folder.is_dir() {
            let files = self.yaml_files(dir, "decisions");
            if files.len() > engine::decision::MAX_TABLES {
                self.error(
                    "decisions",
                    "",
                    format!("a package has at most {} decision tables", engine::decision::MAX_TABLES),
                );
            }
            for path in files.iter().take(engine::decision::MAX_TABLES) {
                let parsed = self.parse::<engine::decision::DecisionDef>(dir, path);
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                names.insert(stem.clone());
                let Some(def) = parsed.typed else { continue };
                let file = parsed.rel;
                if def.name != stem {
                    self.error(
                        &file,
                        "/name",
                        format!("decision `{}` must be in a file named {}.yaml", def.name, def.name),
                    );
                }
                if let Some(from) = &def.rows_from {
                    match package.def(&from.type_name) {
                        None if !package.names.contains(&from.type_name) => {
                            self.error(&file, "/rows_from/type", format!("unknown type `{}`", from.type_name));
                        }
                        None => {}
                        Some(ty) => {
                            let columns = def.inputs.keys().chain(def.outputs.keys());
                            let fields = columns.chain(from.order_by.iter());
                            for field in fields {
                                if !ty.fields.contains_key(field.as_str()) {
                                    self.push(
                                        Severity::Warning,
                                        &file,
                                        "/rows_from/type",
                                        format!(
                                            "`{}` has no field `{field}`: that column is empty in every row",
                                            from.type_name
                                        ),
                                    );
                                }
                            }
                        }
                    }
                }
                match engine::decision::DecisionTable::compile(def) {
                    Ok(table) => {
                        for (pointer, message, error) in table.problems() {
                            let severity = if error { Severity::Error } else { Severity::Warning };
                            self.push(severity, &file, &pointer, message);
                        }
                    }
                    Err(errors) => {
                        for e in errors {
                            match e {
                                engine::decision::DecisionError::Definition { pointer, message, .. } => {
                                    self.error(&file, &pointer, message)
                                }
                                other => self.error(&file, "", other.to_string()),
                            }
                        }
                    }
                }
            }
        }
        for ty in package.primary_types() {
            let Some(wf) = &ty.workflow else { continue };
            let file = ty.parsed.rel.clone();
            for (name, t) in &wf.transitions {
                let base = format!("/workflow/transitions/{}", esc(name));
                let rules = t
                    .guards
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("{base}/guards/{i}/rule"), &g.rule))
                    .chain(t.load.iter().flat_map(|(l, def)| {
                        let at = format!("{base}/load/{}", esc(l));
                        def.id.iter().map(move |r| (format!("{at}/id"), r))
                    }))
                    .collect::<Vec<_>>();
                for (pointer, rule) in rules {
                    for table in engine::logic::decided_tables(rule) {
                        if !names.contains(&table) {
                            self.error(&file, &pointer, format!("`decide`: unknown decision table `{table}`"));
                        }
                    }
                }
                // Scripts: `decide("x", …)` with a literal name (those that do not compile are
                // the engine's).
                let Some(source) = &t.script else { continue };
                let loads: Vec<&str> = t.load.keys().map(String::as_str).collect();
                let Ok(script) = scripts.compile(source, &loads) else { continue };
                for call in script.effect_calls() {
                    if let ("decide", [CallArg::Str(table), ..]) = (call.function.as_str(), call.args.as_slice()) {
                        if !names.contains(table) {
                            let message = format!("decide(\"{table}\", …): unknown decision table `{table}`");
                            self.error_at(&file, &format!("{base}/script"), (call.line, call.column), message);
                        }
                    }
                }
            }
        }
    }
}
