-- Search (`q`) that does not scan: a trigram (pg_trgm) GIN index per (tenant, type) over the
-- text of the type's searched fields, built at publish (`tenants::indexes`, the SQL in
-- `engine::store::query::index`), and a query that uses it:
--
--     create index concurrently entities_q_<hash> on entities
--         using gin (search_text(data, '{code,subject,body}'::text[]) search_trgm_ops)
--         where tenant_id = '<tenant>'::uuid and type = 'ticket'::text;
--     … where tenant_id = $1 and type = $2 and search_text(data, $3) ~~% '%word%' …
--
-- Why trigrams rather than full text: `q` means "every word, case-insensitively, anywhere in
-- the searched fields" (a substring: `t-007` finds `T-0071`, `%` and `_` are literal). A trigram
-- index answers exactly that (`ilike '%word%'`); a tsvector answers whole words or prefixes, which
-- would change what the API promises. (Measured at 1,000,000 rows in docs/benchmarks.md.)
--
-- Why our own operator `~~%` and operator class `search_trgm_ops` rather than pg_trgm's
-- `gin_trgm_ops` with `ilike`: the server's queries run under row-level security, and Postgres
-- only lets a condition into an index scan ahead of the policy when its function is LEAKPROOF
-- (see 0004). `~~*` (texticlike) is not, so `… ilike …` could never use the index. `~~%` is
-- `ilike` in a function declared LEAKPROOF (it cannot fail on the haystack: the pattern is the
-- caller's own, built by the server with `%`, `_` and `\` escaped), and `search_trgm_ops` is
-- pg_trgm's GIN support functions with `~~%` as its ILIKE strategy (4). Declaring LEAKPROOF and
-- creating an operator class need a superuser: the embedded cluster's owner is one; elsewhere
-- the operator exists without them, the index is not built (`tenants::indexes` checks for the
-- operator class) and searches are still correct, by a scan of the tenant's rows of the type.
--
-- pg_trgm is a contrib extension, shipped with Debian's postgresql-15 package (the separate
-- `postgresql-contrib` package is only needed where the distribution splits it out); it is a
-- trusted extension, so a database owner that is not a superuser may create it.

create extension if not exists pg_trgm;

-- The searched text of an entity: its `fields` (top-level, as text), non-null ones joined by a
-- space, in the order given; '' when none. PL/pgSQL so it is never inlined (the index's and the
-- query's expressions stay the same), and it cannot fail.
create function search_text(data jsonb, fields text[]) returns text
    language plpgsql immutable strict parallel safe
as $$
declare
    out text;
    f text;
    v text;
begin
    foreach f in array fields loop
        v := data ->> f;
        if v is not null then
            out := case when out is null then v else out || ' ' || v end;
        end if;
    end loop;
    return coalesce(out, '');
end
$$;

create function search_match(haystack text, pattern text) returns boolean
    language plpgsql immutable strict parallel safe
as $$
begin
    return haystack ilike pattern;
end
$$;

create operator ~~% (
    leftarg = text, rightarg = text, function = search_match,
    restrict = iclikesel, join = iclikejoinsel
);

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        alter function search_text(jsonb, text[]) leakproof;
        alter function search_match(text, text) leakproof;
        create operator class search_trgm_ops for type text using gin as
            operator 4 ~~% (text, text),
            function 1 btint4cmp (int4, int4),
            function 2 gin_extract_value_trgm (text, internal),
            function 3 gin_extract_query_trgm (text, internal, int2, internal, internal, internal, internal),
            function 4 gin_trgm_consistent (internal, int2, text, int4, internal, internal, internal, internal),
            function 6 gin_trgm_triconsistent (internal, int2, text, int4, internal, internal, internal),
            storage int4;
    end if;
end
$$;

grant execute on function search_text(jsonb, text[]) to switchyard_app;
grant execute on function search_match(text, text) to switchyard_app;
