// The studio's own URLs (under the router's basename `/studio`) and the API's paths.

const seg = encodeURIComponent;

export const paths = {
  login: '/login',
  home: (tenant: string) => `/t/${seg(tenant)}`,
  type: (tenant: string, type: string) => `/t/${seg(tenant)}/types/${seg(type)}`,
  list: (tenant: string, type: string) => `/t/${seg(tenant)}/entities/${seg(type)}`,
  create: (tenant: string, type: string) => `/t/${seg(tenant)}/entities/${seg(type)}/new`,
  entity: (tenant: string, type: string, id: string) => `/t/${seg(tenant)}/entities/${seg(type)}/${seg(id)}`,
  design: (tenant: string) => `/t/${seg(tenant)}/design`,
  designType: (tenant: string, type: string) => `/t/${seg(tenant)}/design/types/${seg(type)}`,
  workflow: (tenant: string, type: string) => `/t/${seg(tenant)}/design/types/${seg(type)}/workflow`,
  publish: (tenant: string) => `/t/${seg(tenant)}/design/publish`,
};

/** The login page, remembering where to go afterwards. */
export function loginPath(next?: string): string {
  const safe = next === undefined ? null : safeNext(next);
  return safe === null ? paths.login : `${paths.login}?next=${encodeURIComponent(safe)}`;
}

/**
 * `next` when it is a path of the studio's own (`/t/…`), else null: a login link must not send
 * anyone to another site (`//evil`, `https://…`) or back to the login page.
 */
export function safeNext(next: string | null): string | null {
  if (next === null || !next.startsWith('/t/') || next.startsWith('//') || next.includes('\\')) return null;
  return next;
}
