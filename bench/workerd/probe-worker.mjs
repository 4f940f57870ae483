// The probe as a Worker module for workerd; the engine is imported compiled, as the product's Worker does.
import engine from './recyclegpt.wasm';
import { makeHandler } from './probe-handler.mjs';

const handle = makeHandler(engine);
export default { fetch: (request) => handle(request) };
