/** A WebSocket stand-in the unit tests drive by hand: they open it, feed it frames and close it. */
export class FakeSocket {
  static instances: FakeSocket[] = [];
  static latest(): FakeSocket {
    return FakeSocket.instances[FakeSocket.instances.length - 1]!;
  }

  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: { code?: number | undefined; reason?: string | undefined } | undefined;
  private taken = 0;
  private waiters: Array<{ match: (frame: Record<string, unknown>) => boolean; resolve: (frame: Record<string, unknown>) => void }> = [];

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.instances.push(this);
  }

  send(data: string): void {
    const frame = JSON.parse(data) as Record<string, unknown>;
    this.sent.push(frame);
    for (const waiter of [...this.waiters]) {
      if (!waiter.match(frame)) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(frame);
      return;
    }
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
  }

  /** The first frame sent that no earlier nextSent() returned (waiting for it if need be). */
  nextSent(): Promise<Record<string, unknown>> {
    const index = this.taken++;
    return this.sentMatching((_frame, at) => at === index);
  }

  /** The first frame sent, or to be sent, that matches. */
  sentMatching(match: (frame: Record<string, unknown>, index: number) => boolean): Promise<Record<string, unknown>> {
    const found = this.sent.find((frame, index) => match(frame, index));
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ match: (frame) => match(frame, this.sent.indexOf(frame)), resolve }));
  }

  open(): void {
    this.onopen?.({});
  }

  receive(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverClose(code: number, reason = ''): void {
    this.onclose?.({ code, reason });
  }
}
