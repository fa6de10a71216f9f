import { useSyncExternalStore } from 'react';
import { getSession, subscribe, type Session } from './session';

export function useSession(): Session | null {
  return useSyncExternalStore(subscribe, getSession, getSession);
}

/** Inside the signed-in part of the application, where a session always exists. */
export function useSignedIn(): Session {
  const session = useSession();
  if (!session) throw new Error('useSignedIn outside the signed-in application');
  return session;
}
