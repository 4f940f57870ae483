/** Tokenizes one piece of raw text (no special-token text left in it) and appends the ids to `out`. */
export type FragmentEncoder = (text: string, afterSpecial: boolean, out: number[]) => void;
