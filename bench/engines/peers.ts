/** Where the reference engines are installed (tools/peers, outside the workspaces). */
export const PEERS_NODE_MODULES = new URL('../../tools/peers/node_modules/', import.meta.url).href;
