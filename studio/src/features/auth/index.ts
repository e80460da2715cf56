// What the app shell uses of the auth feature.
export { useMe } from './api/me';
export { LoginPage } from './components/LoginPage';
export { RequireSession } from './components/RequireSession';
export { SignOutButton } from './components/SignOutButton';
export { useSession } from './hooks/useSession';
