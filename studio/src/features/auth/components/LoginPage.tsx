import { useState, type SyntheticEvent } from 'react';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { login } from '../../../api/session';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths, safeNext } from '../../../lib/urls';
import { useSession } from '../hooks/useSession';

export function LoginPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const session = useSession();
  const [tenant, setTenant] = useState(params.get('tenant') ?? '');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const next = safeNext(params.get('next'));
  useDocumentTitle('Sign in');

  if (session.status === 'signed-in' && !pending) {
    return <Navigate to={next ?? paths.home(session.session.claims.ten)} replace />;
  }

  async function submit(e: SyntheticEvent<HTMLFormElement>) {
    e.preventDefault();
    setPending(true);
    setError(null);
    try {
      const s = await login(tenant.trim(), email.trim(), password);
      void navigate(next ?? paths.home(s.claims.ten), { replace: true });
    } catch (err) {
      setError(errorMessage(err));
      setPending(false);
    }
  }

  return (
    <main className="login">
      <h1>Switchyard studio</h1>
      <form onSubmit={(e) => void submit(e)} className="card" aria-labelledby="login-title">
        <h2 id="login-title">Sign in</h2>
        {error !== null && <Alert>{error}</Alert>}
        <label htmlFor="login-tenant">Tenant</label>
        <input
          id="login-tenant"
          name="tenant"
          autoComplete="organization"
          required
          value={tenant}
          onChange={(e) => { setTenant(e.target.value); }}
        />
        <label htmlFor="login-email">Email</label>
        <input
          id="login-email"
          name="email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => { setEmail(e.target.value); }}
        />
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => { setPassword(e.target.value); }}
        />
        <button type="submit" disabled={pending}>
          {pending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
