-- List queries: typed accessors for data fields, and indexes for sorting by timestamps.
--
-- A list filters and sorts on `field_<kind>(data, '<field>')`; on publish, the tenants crate
-- creates one partial expression index per (tenant, type, filterable or sortable field) over
-- exactly that expression (`tenants::indexes`, the SQL in `engine::store::query`).
--
-- Why functions rather than `(data ->> 'f')::numeric`:
--   * row-level security: the server's queries run under a policy, and Postgres only lets a
--     condition into an index scan ahead of the policy when every function in it is LEAKPROOF.
--     `->>` and `numeric` comparisons are not, so `data ->> 'f' = $1` would only ever be a
--     filter after the scan. These functions are declared LEAKPROOF (they cannot fail, so they
--     reveal nothing through errors) and return types whose comparisons are leakproof (text,
--     double precision, boolean, uuid, timestamptz). Declaring LEAKPROOF needs a superuser: the
--     embedded cluster's owner is one; elsewhere the functions are created without it and lists
--     are still correct, with indexes used for order and partial predicates only.
--   * robustness: an index expression that fails fails the INSERT of the row. A value of the
--     wrong JSON type (data written under an older version of the type) yields NULL, never an
--     error.
--   * they are PL/pgSQL, so the planner never inlines them (an inlined body would again
--     contain `->>`), and the expressions of a query and of its index stay identical.

create function field_text(data jsonb, name text) returns text
    language plpgsql immutable strict parallel safe
as $$
begin
    return data ->> name;
end
$$;

create function field_number(data jsonb, name text) returns double precision
    language plpgsql immutable strict parallel safe
as $$
declare
    v jsonb := data -> name;
    n numeric;
begin
    if jsonb_typeof(v) = 'number' then
        n := v::numeric;
        -- double precision's range; beyond it the cast would fail.
        if n = 0 or abs(n) between 1e-300 and 1e300 then
            return n::double precision;
        end if;
    end if;
    return null;
end
$$;

create function field_boolean(data jsonb, name text) returns boolean
    language plpgsql immutable strict parallel safe
as $$
declare
    v jsonb := data -> name;
begin
    if jsonb_typeof(v) = 'boolean' then
        return v::boolean;
    end if;
    return null;
end
$$;

create function field_uuid(data jsonb, name text) returns uuid
    language plpgsql immutable strict parallel safe
as $$
declare
    v text := data ->> name;
begin
    if jsonb_typeof(data -> name) = 'string'
        and v ~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' then
        return v::uuid;
    end if;
    return null;
end
$$;

-- RFC 3339 with an explicit offset only: then the result depends on neither TimeZone nor
-- DateStyle, which is what makes IMMUTABLE true here.
create function field_timestamptz(data jsonb, name text) returns timestamptz
    language plpgsql immutable strict parallel safe
as $$
declare
    v text := data ->> name;
begin
    if jsonb_typeof(data -> name) = 'string'
        and v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' then
        begin
            return v::timestamptz;
        exception when others then
            return null; -- e.g. month 13: shaped right, not a date
        end;
    end if;
    return null;
end
$$;

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        alter function field_text(jsonb, text) leakproof;
        alter function field_number(jsonb, text) leakproof;
        alter function field_boolean(jsonb, text) leakproof;
        alter function field_uuid(jsonb, text) leakproof;
        alter function field_timestamptz(jsonb, text) leakproof;
    end if;
end
$$;

grant execute on function field_text(jsonb, text) to switchyard_app;
grant execute on function field_number(jsonb, text) to switchyard_app;
grant execute on function field_boolean(jsonb, text) to switchyard_app;
grant execute on function field_uuid(jsonb, text) to switchyard_app;
grant execute on function field_timestamptz(jsonb, text) to switchyard_app;

-- `sort=created_at` / `sort=updated_at` (and their ranges), paginated by (timestamp, id).
create index entities_type_created_id on entities (tenant_id, type, created_at, id);
create index entities_type_updated_id on entities (tenant_id, type, updated_at, id);
