-- Append-only entity types (issue 12, part 5): a type marked `immutable: true` in a published
-- version has entities that are created and never updated or deleted, by anyone, through any
-- route. The server refuses it first (a clear 409 `IMMUTABLE`); these triggers make it hold for
-- every code path and every statement the request role can send.
--
-- Design:
--   * `config_versions.immutable_types` is the list of the version's append-only types, computed
--     here from the stored `package` when the version is inserted (whatever the inserting code
--     says), and never changed after (the request role cannot update versions at all).
--   * `entities.immutable` says whether the row is append-only. It is computed by the triggers
--     from the row's pinned version (`config_version`) when the row is inserted, or moved to
--     another version; what a statement writes into it is ignored. Reading one boolean of the
--     old row keeps the common update (a transition of a mutable entity) free of any lookup:
--     the update trigger's `when` clause does not even call the function for it.
--   * An append-only row refuses UPDATE and DELETE with SQLSTATE `SYIMM`, which the server maps
--     to 409 `IMMUTABLE` (or 422 for a script of a package that writes to one). So it is never
--     moved to another version either: it stays pinned to the version it was created in.
--   * A mutable row moved (migrated) to a version in which its type is append-only becomes
--     append-only; the reverse cannot happen.
--   * `switchyard_app` owns nothing, so it cannot `alter table … disable trigger`, and it has no
--     TRUNCATE right. The owner (migrations, administration) keeps full control.

alter table config_versions add column immutable_types text[] not null default '{}';

create function config_versions_immutable_types() returns trigger
    language plpgsql
as $$
begin
    new.immutable_types := coalesce(
        (select array_agg(t ->> 'name' order by t ->> 'name')
           from json_array_elements(case when json_typeof(new.package -> 'types') = 'array'
                                         then new.package -> 'types' else '[]'::json end) as t
          where json_typeof(t -> 'immutable') = 'boolean' and (t ->> 'immutable')::boolean),
        '{}');
    return new;
end
$$;
create trigger config_versions_immutable_types
    before insert on config_versions
    for each row execute function config_versions_immutable_types();

-- The versions published before this migration have no append-only type: `immutable` did not
-- exist in the package format. (Recomputed anyway, in case a package carries the key.)
update config_versions set immutable_types = coalesce(
    (select array_agg(t ->> 'name' order by t ->> 'name')
       from json_array_elements(case when json_typeof(package -> 'types') = 'array'
                                     then package -> 'types' else '[]'::json end) as t
      where json_typeof(t -> 'immutable') = 'boolean' and (t ->> 'immutable')::boolean),
    '{}');

alter table entities add column immutable boolean not null default false;

-- Whether `type` is append-only in the tenant's `version`.
create function entity_type_immutable(p_tenant uuid, p_version bigint, p_type text) returns boolean
    language sql stable
as $$
    select coalesce((select p_type = any (immutable_types) from config_versions
                      where tenant_id = p_tenant and version = p_version), false)
$$;

create function entities_immutable_on_insert() returns trigger
    language plpgsql
as $$
begin
    new.immutable := entity_type_immutable(new.tenant_id, new.config_version, new.type);
    return new;
end
$$;
create trigger entities_immutable_on_insert
    before insert on entities
    for each row execute function entities_immutable_on_insert();

create function entities_append_only() returns trigger
    language plpgsql
as $$
begin
    if old.immutable then
        raise exception '% entities are append-only: they cannot be changed or deleted (% refused)', old.type, tg_op
            using errcode = 'SYIMM', detail = old.type;
    end if;
    if tg_op = 'DELETE' then
        return old;
    end if;
    -- A mutable row: `immutable` follows the version the row is pinned to, never a statement.
    if new.config_version is distinct from old.config_version or new.type is distinct from old.type then
        new.immutable := entity_type_immutable(new.tenant_id, new.config_version, new.type);
    else
        new.immutable := old.immutable;
    end if;
    return new;
end
$$;
create trigger entities_append_only_update
    before update on entities
    for each row
    when (old.immutable or new.immutable is distinct from old.immutable
          or new.config_version is distinct from old.config_version or new.type is distinct from old.type)
    execute function entities_append_only();
create trigger entities_append_only_delete
    before delete on entities
    for each row
    when (old.immutable)
    execute function entities_append_only();

grant execute on function entity_type_immutable(uuid, bigint, text) to switchyard_app;
