// The status note of an options-page section, and the hook that runs a section's action and reports its outcome there.
import { useState } from 'preact/hooks';
import { errorText } from '../ui/use-call.js';

export type Note = { text: string; tone?: 'error' } | null;

/** One status line; nothing when there is no note (or it has no text). */
export function NoteLine({ note }: { note: Note }) {
  return note?.text ? (
    <div class={`status ${note.tone ?? ''}`} role="status">
      {note.text}
    </div>
  ) : null;
}

/** `act(what)` clears the note, runs `what`, shows the text it returns and calls `reload`; an error becomes an error note. */
export function useActionNote(reload?: () => void) {
  const [note, setNote] = useState<Note>(null);
  const act = async (what: () => Promise<string>): Promise<void> => {
    setNote(null);
    try {
      setNote({ text: await what() });
      reload?.();
    } catch (err) {
      setNote({ text: errorText(err), tone: 'error' });
    }
  };
  return { note, setNote, act };
}
