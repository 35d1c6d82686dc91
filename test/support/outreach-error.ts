// Catching the OutreachError a call throws (or a promise rejects with), so a test can assert on its code and message.
import { OutreachError } from '../../connector/errors.js';

/** The OutreachError `fn` throws; any other error is rethrown, and no error at all fails the test. */
export function thrown(fn: () => unknown): OutreachError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OutreachError) return err;
    throw err;
  }
  throw new Error('expected an OutreachError');
}

/** The OutreachError `p` rejects with; any other error is rethrown, and a fulfilled promise fails the test. */
export async function rejected(p: Promise<unknown>): Promise<OutreachError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OutreachError) return err;
    throw err;
  }
  throw new Error('expected an OutreachError');
}
