import { Navigate } from 'react-router';
import { useSession } from '../features/auth';
import { Loading } from '../components/Loading';
import { paths } from '../lib/urls';

/** `/studio/`: your tenant's home, or the login page. */
export function Root() {
  const session = useSession();
  if (session.status === 'unknown') return <Loading label="Checking your session…" />;
  if (session.status === 'anonymous') return <Navigate to={paths.login} replace />;
  return <Navigate to={paths.home(session.session.claims.ten)} replace />;
}
