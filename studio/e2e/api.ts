// The API as a client other than the studio uses it (Node's fetch): to set up data for the
// end-to-end tests and to check what the studio did.

export interface Client {
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;
  ok: <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => Promise<T>;
}

export async function signInApi(baseURL: string, tenant: string, email: string, password: string): Promise<Client> {
  const login = await fetch(`${baseURL}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant, email, password }),
  });
  if (!login.ok) throw new Error(`login of ${email}: ${String(login.status)} ${await login.text()}`);
  const { access_token: token } = (await login.json()) as { access_token: string };
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${baseURL}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as unknown) : null };
  };
  return {
    call,
    ok: async <T,>(method: string, path: string, body?: unknown) => {
      const r = await call(method, path, body);
      if (r.status >= 300) throw new Error(`${method} ${path}: ${String(r.status)} ${JSON.stringify(r.body)}`);
      return r.body as T;
    },
  };
}

interface Entity {
  id: string;
  state: string;
  version: number;
  data: Record<string, unknown>;
}

/** A chemichemi order of `quantity` units of its cheapest product, submitted: PENDING_APPROVAL. */
export async function pendingOrder(api: Client, tenant: string, quantity: number): Promise<Entity> {
  const base = `/api/v1/t/${tenant}/entities`;
  const first = async (type: string) => {
    const list = await api.ok<{ data: Entity[] }>('GET', `${base}/${type}?limit=50`);
    const active = list.data.find((e) => e.state === 'ACTIVE') ?? list.data[0];
    if (!active) throw new Error(`no ${type} in the demo data`);
    return active.id;
  };
  const cheapest = async () => {
    const list = await api.ok<{ data: Entity[] }>('GET', `${base}/product?limit=100`);
    const sorted = [...list.data].sort((a, b) => Number(a.data.base_price) - Number(b.data.base_price));
    if (!sorted[0]) throw new Error('no product in the demo data');
    return sorted[0].id;
  };
  const order = await api.ok<Entity>('POST', `${base}/order`, {
    data: {
      customer_id: await first('customer'),
      warehouse_id: await first('warehouse'),
      items: [{ product_id: await cheapest(), quantity }],
    },
  });
  const submitted = await api.ok<{ entity: Entity }>('POST', `${base}/order/${order.id}/transitions/submitOrder`, {});
  return submitted.entity;
}
