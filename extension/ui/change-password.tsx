// The "choose a new password" form shown after signing in with a one-time password; the passwords live only in this form's state.
import { useState } from 'preact/hooks';
import type { SessionState } from '../messages.js';
import { errorText } from './use-call.js';

export const minPasswordLength = 12;

export interface ChangePasswordProps {
  /** Who must choose a new password. */
  username: string;
  /** The one-time password just typed in the sign-in form, when this page has it; otherwise the form asks for it. */
  currentPassword?: string;
  /** Sends `session/change-password` to the background and answers with the session after signing in again. */
  change(currentPassword: string, newPassword: string): Promise<SessionState>;
  onChange(session: SessionState): void;
  onCancel(): void;
}

export function ChangePassword({ username, currentPassword, change, onChange, onCancel }: ChangePasswordProps) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const oldPassword = currentPassword ?? current;
  const problem =
    next.length > 0 && next.length < minPasswordLength
      ? `The new password needs at least ${minPasswordLength} characters.`
      : repeat.length > 0 && next !== repeat
        ? 'The two new passwords differ.'
        : next.length > 0 && next === oldPassword
          ? 'Choose a password other than the one-time one.'
          : null;
  const ready = !busy && oldPassword.length > 0 && next.length >= minPasswordLength && next === repeat && problem === null;

  return (
    <form
      data-part="change-password"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!ready) return;
        setBusy(true);
        setError(null);
        try {
          const session = await change(oldPassword, next);
          setCurrent('');
          setNext('');
          setRepeat('');
          onChange(session);
        } catch (err) {
          setError(errorText(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      <div class="status">
        <strong>{username}</strong> signed in with a one-time password: choose a new password to continue.
      </div>
      {currentPassword === undefined && (
        <>
          <label>One-time password</label>
          <input name="current-password" type="password" autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </>
      )}
      <label>New password ({minPasswordLength}+ characters)</label>
      <input name="new-password" type="password" autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} />
      <label>New password again</label>
      <input name="repeat-password" type="password" autocomplete="new-password" value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
      <div class="row" style="margin-top:8px">
        <button type="submit" name="change-password" disabled={!ready}>
          Set new password
        </button>
        <button type="button" class="secondary" name="sign-out" disabled={busy} onClick={onCancel}>
          Sign out
        </button>
      </div>
      {(error ?? problem) && (
        <div class="error" role="alert">
          {error ?? problem}
        </div>
      )}
    </form>
  );
}
