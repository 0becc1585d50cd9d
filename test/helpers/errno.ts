/**
 * Errno helper for unit tests that import the TypeScript sources (the e2e helpers check
 * the built package's SimError class instead): the code a call throws, or 'no error'.
 */
import { isSimError } from '../../shared/errors.js';

export function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isSimError(e)) return e.code;
    throw e;
  }
  return 'no error';
}
