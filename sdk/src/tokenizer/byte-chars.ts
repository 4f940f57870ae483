/**
 * GPT-2's reversible byte ↔ character mapping: printable Latin-1 bytes stand for themselves, the other
 * 68 bytes (controls, space, soft hyphen…) become U+0100.. in byte order, so every byte is one visible char.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const keepsItself = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(keepsItself(b) ? b : 0x100 + shifted++));
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

const utf8 = new TextEncoder();

/** The byte-level form of a pre-token: its UTF-8 bytes, each as its GPT-2 character. */
export function toByteChars(text: string): string {
  let out = '';
  for (const byte of utf8.encode(text)) out += BYTE_TO_CHAR[byte];
  return out;
}
