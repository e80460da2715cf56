-- `decimal` fields (exact money): stored as canonical decimal strings ("1250.00"), read as
-- numeric for filters, sorts and their indexes. A JSON number (data written before a field
-- became decimal) reads as the same numeric; anything else reads as null, like the other
-- accessors of 0004. Strict, immutable and leakproof like them, so its comparisons can be
-- index conditions under row-level security.
create function field_decimal(data jsonb, name text) returns numeric
    language plpgsql immutable strict parallel safe
as $$
declare
    v jsonb := data -> name;
    t text;
begin
    if jsonb_typeof(v) = 'number' then
        return v::numeric;
    end if;
    if jsonb_typeof(v) = 'string' then
        t := v #>> '{}';
        -- The canonical shape only (at most 40 digits): no exceptions from the cast.
        if length(t) <= 42 and t ~ '^-?[0-9]+(\.[0-9]+)?$' then
            return t::numeric;
        end if;
    end if;
    return null;
end
$$;

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        alter function field_decimal(jsonb, text) leakproof;
    end if;
end
$$;

grant execute on function field_decimal(jsonb, text) to switchyard_app;
