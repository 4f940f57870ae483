export { compileConstraint, type Constraint, type ConstraintState, type JsonSchema, type ResponseFormat } from './constraint.js';
export type { ConstraintVocab } from './token-trie.js';
