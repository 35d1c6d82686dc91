// Session status and the sign-in / sign-out form shared by the popup, the options page and the side panel.
import { useState } from 'preact/hooks';
import { send } from '../api.js';
import type { SessionState } from '../messages.js';
import { ChangePassword } from './change-password.js';
import { errorText } from './use-call.js';

export interface SignInProps {
  session: SessionState;
  onChange(session: SessionState): void;
}

export function SignIn({ session, onChange }: SignInProps) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // The one-time password just typed, kept in this form's memory only until the new one is set (never in storage).
  const [oneTime, setOneTime] = useState<string | undefined>(undefined);

  const run = async (action: () => Promise<SessionState>) => {
    setBusy(true);
    setError(null);
    try {
      const next = await action();
      setOneTime(next.passwordChangeRequired && password ? password : undefined);
      setPassword('');
      onChange(next);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  if (!session.connectorUrl) return <div class="status">No connector configured: an admin sets it in the options page.</div>;
  if (session.signedIn && session.user && session.passwordChangeRequired) {
    return (
      <ChangePassword
        username={session.user.username}
        currentPassword={oneTime}
        change={(currentPassword, newPassword) => send({ type: 'session/change-password', currentPassword, newPassword })}
        onChange={(next) => {
          setOneTime(undefined);
          onChange(next);
        }}
        onCancel={() => {
          setOneTime(undefined);
          void run(() => send({ type: 'session/sign-out' }));
        }}
      />
    );
  }
  if (session.signedIn && session.user) {
    return (
      <div class="row" data-part="session">
        <span>
          Signed in as <strong>{session.user.username}</strong> ({session.user.role})
        </span>
        <button class="secondary" name="sign-out" disabled={busy} onClick={() => run(() => send({ type: 'session/sign-out' }))}>
          Sign out
        </button>
      </div>
    );
  }
  return (
    <form
      data-part="sign-in"
      onSubmit={(e) => {
        e.preventDefault();
        void run(() => send({ type: 'session/sign-in', username, password }));
      }}
    >
      <label>User name</label>
      <input name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
      <label>Password</label>
      <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <div class="row" style="margin-top:8px">
        <button type="submit" name="sign-in" disabled={busy || !username || !password}>
          Sign in
        </button>
      </div>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
    </form>
  );
}
