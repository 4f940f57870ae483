/** A minimal Chrome DevTools Protocol client (Node's and workerd's inspectors speak it over a WebSocket). */
export class Cdp {
  private next = 1;
  private readonly pending = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return; // an event
      this.pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result);
    };
  }

  /** Attaches to the first target the inspector at `address` (host:port) lists. */
  static async connect(address: string): Promise<Cdp> {
    if (typeof WebSocket === 'undefined') throw new Error('the inspector client needs a global WebSocket: on Node 20 run with NODE_OPTIONS=--experimental-websocket');
    const targets = (await (await fetch(`http://${address}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const url = targets[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error(`the inspector at ${address} lists no target`);
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => ((socket.onopen = resolve), (socket.onerror = reject)));
    return new Cdp(socket);
  }

  send<T = unknown>(method: string, params: object = {}): Promise<T> {
    const id = this.next++;
    const answer = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject }));
    this.socket.send(JSON.stringify({ id, method, params }));
    return answer;
  }

  close(): void {
    this.socket.close();
  }
}
