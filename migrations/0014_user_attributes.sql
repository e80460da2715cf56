-- User attributes: values a tenant package declares for its users (`user_attributes:` in
-- tenant.yaml, e.g. the customer a customer's buyer belongs to), set by the package's `users:`
-- and by admins over the API, and read by record rules, guards and scripts as
-- `actor.attributes.<name>`. Always a JSON object (the declarations are checked by the server,
-- which knows the live version).
alter table users add column attributes jsonb not null default '{}'::jsonb
    constraint users_attributes_object check (jsonb_typeof(attributes) = 'object');

-- `auth_user` answers the attributes too (its result changes, so it is dropped and made again).
drop function auth_user(uuid, uuid, uuid);
create function auth_user(p_tenant uuid, p_user uuid, p_session uuid)
    returns table (slug text, email text, name text, roles text[], active boolean, session_ok boolean,
                   attributes jsonb)
    language plpgsql volatile
as $$
begin
    perform set_config('app.tenant_id', p_tenant::text, true);
    return query
        select t.slug, u.email, u.name, u.roles, u.active,
               p_session is null or exists (
                   select 1 from refresh_tokens r
                   where r.tenant_id = p_tenant and r.family_id = p_session and r.revoked_at is null),
               u.attributes
        from users u
        join tenants t on t.id = u.tenant_id
        where u.tenant_id = p_tenant and u.id = p_user;
end
$$;
grant execute on function auth_user(uuid, uuid, uuid) to switchyard_app;

-- A change of the attributes changes what `auth_user` answers: the credential caches drop it.
drop trigger users_auth_changed on users;
create trigger users_auth_changed
    after update on users for each row
    when (old.email is distinct from new.email or old.name is distinct from new.name
          or old.roles is distinct from new.roles or old.active is distinct from new.active
          or old.attributes is distinct from new.attributes)
    execute function auth_changed('tenant_id');
