import { Navigate, Outlet, useLocation, useParams } from 'react-router';
import { Loading } from '../../../components/Loading';
import { loginPath, paths } from '../../../lib/urls';
import { useSession } from '../hooks/useSession';

/** Its routes only for a signed-in user of the tenant in the path; others go to the login page. */
export function RequireSession() {
  const session = useSession();
  const location = useLocation();
  const { tenant } = useParams();
  if (session.status === 'unknown') return <Loading label="Checking your session…" />;
  if (session.status === 'anonymous') {
    return <Navigate to={loginPath(location.pathname + location.search)} replace />;
  }
  const own = session.session.claims.ten;
  if (tenant !== undefined && tenant !== own) return <Navigate to={paths.home(own)} replace />;
  return <Outlet />;
}
