import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { logout } from '../../../api/session';
import { paths } from '../../../lib/urls';

export function SignOutButton() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [pending, setPending] = useState(false);
  async function signOut() {
    setPending(true);
    try {
      await logout();
    } finally {
      queryClient.clear();
      void navigate(paths.login, { replace: true });
    }
  }
  return (
    <button type="button" className="link-button" disabled={pending} onClick={() => void signOut()}>
      Sign out
    </button>
  );
}
