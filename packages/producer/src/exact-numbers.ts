/**
 * Numbers that JSON.parse would change. A body is parsed into JavaScript
 * numbers (64-bit floats): `1e400` becomes Infinity (stored as null),
 * `12345678901234567890` becomes 12345678901234567000, `1e-400` becomes 0.
 * A payload must be delivered exactly as sent or refused, so such a body is
 * refused with a 400 naming the top-level field that holds the number.
 *
 * Cheap on the common path: every decimal with at most 15 significant
 * digits and an exponent of at most two digits survives the round trip, so
 * the body is scanned only when one regular expression finds something
 * that may be a number with 16 digits or a three-digit exponent; then only
 * the number tokens outside strings that could change are checked.
 */

/**
 * Whether a body may hold a number that does not survive JSON.parse: where
 * a JSON number can start (the body's start, after `:`, `,` or `[`), 16 or
 * more digits (a dot allowed among them), or digits with a three-digit
 * exponent. Digits inside strings rarely follow those characters, so
 * strings full of digits (ids, hashes, times) do not set it off.
 */
const MAYBE = /(?:^|[:,[])\s*-?(?:(?:\d\.?){16}|[\d.]+[eE][+-]?\d{3})/;

/** Whether a body may hold a number JSON.parse would change: the only test the common path pays. */
export function mayHoldInexactNumber(text: string): boolean {
  return MAYBE.test(text);
}

const QUOTE = 34;
const BACKSLASH = 92;

/**
 * The first number in `text` (valid JSON) that JSON.parse would not keep
 * exactly, with the top-level field holding it (`body` when the body
 * itself is not an object); undefined when there is none.
 */
export function inexactNumber(text: string): { field: string; number: string } | undefined {
  if (!mayHoldInexactNumber(text)) return undefined;
  let depth = 0;
  // The last string read, as [start, end) of its text with the quotes, and the top-level key in force.
  let lastString: [number, number] | undefined;
  let key: [number, number] | undefined;
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i + 1);
      if (end < 0) return undefined;
      lastString = [i, end + 1];
      i = end + 1;
      continue;
    }
    if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      const token = text.slice(i, j);
      if (!keepsExactly(token)) {
        const field = depth === 0 || key === undefined ? 'body' : (JSON.parse(text.slice(key[0], key[1])) as string);
        return { field, number: token };
      }
      i = j;
      lastString = undefined;
      continue;
    }
    if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
    else if (c === 58 && depth === 1 && lastString) key = lastString;
    if (c > 32) lastString = c === 58 ? lastString : undefined;
    i++;
  }
  return undefined;
}

/** The index of the quote that ends the string whose text starts at `from`; -1 when there is none. */
function closingQuote(text: string, from: number): number {
  for (let j = text.indexOf('"', from); j >= 0; j = text.indexOf('"', j + 1)) {
    let slashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return j;
  }
  return -1;
}

function isNumberChar(c: number): boolean {
  // digits . e E + -
  return (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45;
}

/** Whether the JSON number `token` denotes exactly the value that JavaScript prints for Number(token). */
export function keepsExactly(token: string): boolean {
  // At most 15 digits and no exponent: always exact (DBL_DIG is 15).
  if (token.length < 16 && !/[eE]/.test(token)) return true;
  const n = Number(token);
  if (!Number.isFinite(n)) return false;
  const a = decimal(token);
  const b = decimal(String(n));
  return a.digits === b.digits && a.exponent === b.exponent && (a.digits === '' || a.negative === b.negative);
}

/** A decimal as sign, significant digits (no leading or trailing zeros) and the exponent of the last digit. */
function decimal(text: string): { negative: boolean; digits: string; exponent: number } {
  const negative = text.startsWith('-');
  const body = negative ? text.slice(1) : text;
  const e = body.search(/[eE]/);
  const mantissa = e < 0 ? body : body.slice(0, e);
  let exponent = e < 0 ? 0 : Number(body.slice(e + 1));
  const dot = mantissa.indexOf('.');
  let digits = mantissa;
  if (dot >= 0) {
    digits = mantissa.slice(0, dot) + mantissa.slice(dot + 1);
    exponent -= mantissa.length - dot - 1;
  }
  digits = digits.replace(/^0+/, '');
  const trailing = /0*$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return { negative, digits, exponent: digits === '' ? 0 : exponent };
}
