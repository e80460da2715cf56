import { NavLink, Outlet, useParams } from 'react-router';
import { SignOutButton, useMe, useSession } from '../features/auth';
import { paths } from '../lib/urls';
import { useLiveUpdates } from './useLiveUpdates';

/** The frame of every signed-in page: where you are, who you are, how to leave. */
export function Shell() {
  const tenant = useParams().tenant ?? '';
  const session = useSession();
  const me = useMe();
  const email = session.status === 'signed-in' ? session.session.claims.email : '';
  const user = me.data?.name || me.data?.email || email;
  useLiveUpdates(session.status === 'signed-in' ? tenant : '');
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Switchyard studio</span>
        <nav aria-label="Main">
          <NavLink to={paths.home(tenant)} end>
            Home
          </NavLink>
          {/* Designing is for admins (the server refuses anyone else). */}
          {me.data?.roles.includes('admin') ? <NavLink to={paths.design(tenant)}>Design</NavLink> : null}
        </nav>
        <div className="who">
          <span aria-label="Tenant" className="tenant">
            {tenant}
          </span>
          <span aria-label="Signed in as">{user}</span>
          <SignOutButton />
        </div>
      </header>
      <main id="main" className="content">
        <Outlet />
      </main>
    </div>
  );
}
