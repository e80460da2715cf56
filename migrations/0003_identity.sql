-- Identity: refresh tokens (login sessions, rotated on every use), API keys for service
-- accounts, and the functions that authenticate a request in one round trip.
--
-- The rules of 0001 hold: `tenant_id` leads every primary key, unique constraint and foreign
-- key; row-level security is enabled and FORCED with the same policy (the row's tenant is the
-- one set for the transaction); the server works as `switchyard_app`.
--
-- Secrets are never stored: a refresh token is `<tenant>.<id>.<secret>` and an API key
-- `syk_<tenant>_<id>_<secret>`; only sha-256 of the secret is kept, and the tenant and id in the
-- clear let the server set the tenant (for row-level security) before it looks the row up.

-- One row per refresh token. A login starts a family (a session); each refresh marks the token
-- used and adds its successor to the family. Presenting a used token again means it was stolen
-- (or replayed): the whole family is revoked.
create table refresh_tokens (
    tenant_id   uuid not null,
    id          uuid not null,
    family_id   uuid not null,
    user_id     uuid not null,
    secret_hash bytea not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    -- When it was exchanged for its successor (a second exchange is a reuse).
    used_at     timestamptz,
    -- When its family was revoked (logout, reuse, deactivation).
    revoked_at  timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index refresh_tokens_family on refresh_tokens (tenant_id, family_id);
-- "Every session of a user" (logout everywhere, deactivation) and the purge of a user's expired
-- tokens at login.
create index refresh_tokens_user on refresh_tokens (tenant_id, user_id);

-- API keys of service accounts: a name, roles of the tenant's config, and the hash of the
-- secret (shown once, when the key is created). Revoking is setting `revoked_at`.
create table api_keys (
    tenant_id   uuid not null,
    id          uuid not null,
    name        text not null,
    roles       text[] not null default '{}',
    secret_hash bytea not null,
    created_at  timestamptz not null default now(),
    created_by  text not null,
    revoked_at  timestamptz,
    primary key (tenant_id, id)
);

alter table refresh_tokens enable row level security;
alter table refresh_tokens force row level security;
create policy tenant_isolation on refresh_tokens
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy tenant_isolation on api_keys
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

-- Who a bearer token is, now: sets the tenant for the rest of the current transaction (for a
-- lone statement, just that statement) and returns the user's current state, so a deactivation
-- or a role change applies to tokens already issued, and `session_ok` says whether the session
-- (refresh-token family) the access token belongs to is still alive (true with no session).
-- No row: no such user in that tenant. Runs with the caller's rights: row-level security holds.
create function auth_user(p_tenant uuid, p_user uuid, p_session uuid)
    returns table (slug text, email text, name text, roles text[], active boolean, session_ok boolean)
    language plpgsql volatile
as $$
begin
    perform set_config('app.tenant_id', p_tenant::text, true);
    return query
        select t.slug, u.email, u.name, u.roles, u.active,
               p_session is null or exists (
                   select 1 from refresh_tokens r
                   where r.tenant_id = p_tenant and r.family_id = p_session and r.revoked_at is null)
        from users u
        join tenants t on t.id = u.tenant_id
        where u.tenant_id = p_tenant and u.id = p_user;
end
$$;

-- The same for an API key: its tenant's slug, name, roles, secret hash (compared by the
-- server) and whether it was revoked.
create function auth_api_key(p_tenant uuid, p_key uuid)
    returns table (slug text, name text, roles text[], secret_hash bytea, revoked boolean)
    language plpgsql volatile
as $$
begin
    perform set_config('app.tenant_id', p_tenant::text, true);
    return query
        select t.slug, k.name, k.roles, k.secret_hash, k.revoked_at is not null
        from api_keys k
        join tenants t on t.id = k.tenant_id
        where k.tenant_id = p_tenant and k.id = p_key;
end
$$;

grant select, insert, update, delete on refresh_tokens to switchyard_app;
grant select, insert, update on api_keys to switchyard_app;
grant execute on function auth_user(uuid, uuid, uuid) to switchyard_app;
grant execute on function auth_api_key(uuid, uuid) to switchyard_app;
