// The PHI brand: plaintext protected health information carries this type so that it cannot reach a log unnoticed.
declare const phiBrand: unique symbol;

/** A value that is protected health information. The logger's field types refuse it at compile time. */
export type Phi<T> = T & { readonly [phiBrand]: true };

/** Marks a value as PHI (no runtime cost). */
export function phi<T>(value: T): Phi<T> {
  return value as Phi<T>;
}

/** Strips the brand where PHI is deliberately handed to a sealed store or an encrypted channel. */
export function reveal<T>(value: Phi<T>): T {
  return value as T;
}

/** Field values the logger accepts: anything but PHI. */
export type NotPhi<T> = T extends { readonly [phiBrand]: true } ? never : T;
