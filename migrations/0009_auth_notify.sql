-- Every change that can alter what `auth_user` or `auth_api_key` answer notifies the channel
-- `switchyard_auth` (payload: the tenant id), in the changing transaction: each server process
-- listens and drops the credential answers it keeps (api/src/auth/cache.rs). Such changes are
-- rare (an admin edits a user, a session ends, a key is revoked, `tenant apply` updates roles),
-- so the cluster-wide lock a notifying commit takes costs nothing here.
create function auth_changed() returns trigger
    language plpgsql
as $$
begin
    perform pg_notify('switchyard_auth',
        to_jsonb(case when tg_op = 'DELETE' then old else new end) ->> tg_argv[0]);
    return null;
end
$$;

create trigger users_auth_changed
    after update on users for each row
    when (old.email is distinct from new.email or old.name is distinct from new.name
          or old.roles is distinct from new.roles or old.active is distinct from new.active)
    execute function auth_changed('tenant_id');
create trigger users_auth_deleted
    after delete on users for each row execute function auth_changed('tenant_id');

-- A session is valid while a token of its family is unrevoked: revoking or deleting one counts.
create trigger refresh_tokens_auth_changed
    after update on refresh_tokens for each row
    when (old.revoked_at is distinct from new.revoked_at)
    execute function auth_changed('tenant_id');
create trigger refresh_tokens_auth_deleted
    after delete on refresh_tokens for each row execute function auth_changed('tenant_id');

create trigger api_keys_auth_changed
    after update on api_keys for each row
    when (old.name is distinct from new.name or old.roles is distinct from new.roles
          or old.revoked_at is distinct from new.revoked_at)
    execute function auth_changed('tenant_id');
create trigger api_keys_auth_deleted
    after delete on api_keys for each row execute function auth_changed('tenant_id');

-- The answers carry the tenant's slug.
create trigger tenants_auth_changed
    after update on tenants for each row
    when (old.slug is distinct from new.slug)
    execute function auth_changed('id');
create trigger tenants_auth_deleted
    after delete on tenants for each row execute function auth_changed('id');
