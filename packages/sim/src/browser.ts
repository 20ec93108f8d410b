/**
 * The rest of a till's browser, as the real client uses it: Web Locks (which tab leads) and a
 * BroadcastChannel (how tabs hear each other), on the simulation's scheduler.
 *
 * Terms: a *browser* is one boot of a till (one `Life`); its tabs are clients on one database.
 *
 * Invariants:
 * 1. A lock is held by at most one request at a time; waiting requests are granted in the order
 *    they asked, each as a later event (never inside `request` or the release).
 * 2. A lock is released when the holder's callback promise settles, or when its signal aborts
 *    a request still waiting (which then rejects with an `AbortError`).
 * 3. A message posted on a channel reaches every other open channel of the same name in the
 *    same browser, as a structured clone, as a later event; never the poster itself.
 * 4. Nothing crosses browsers: a crashed browser's locks and channels die with its life.
 */
import type { Life } from './sim-loop.ts'

export interface SimBrowser {
  readonly locks: LockManager
  readonly BroadcastChannel: typeof BroadcastChannel
}

/**
 * @example
 * const browser = createSimBrowser(life)
 * createClient({ …, locks: browser.locks, BroadcastChannel: browser.BroadcastChannel })
 */
export function createSimBrowser(life: Life): SimBrowser {
  return { locks: createLocks(life), BroadcastChannel: channelClass(life) }
}

interface Waiter {
  readonly name: string
  readonly callback: (lock: Lock | null) => unknown
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  readonly signal: AbortSignal | undefined
}

function createLocks(life: Life): LockManager {
  const held = new Set<string>()
  const queue: Waiter[] = []
  const grantNext = (name: string) => {
    if (held.has(name)) return
    const i = queue.findIndex((w) => w.name === name)
    if (i < 0) return
    const waiter = queue.splice(i, 1)[0] as Waiter
    held.add(name)
    life.after(0, `${life.name} lock granted`, () => {
      let result: unknown
      try {
        result = waiter.callback({ name, mode: 'exclusive' } as Lock)
      } catch (error) {
        result = Promise.reject(error)
      }
      void Promise.resolve(result)
        .then(waiter.resolve, waiter.reject)
        .finally(() => {
          held.delete(name)
          grantNext(name)
        })
    })
  }
  const request = (
    name: string,
    optionsOrCallback: LockOptions | ((lock: Lock | null) => unknown),
    maybeCallback?: (lock: Lock | null) => unknown,
  ): Promise<unknown> => {
    const options = typeof optionsOrCallback === 'function' ? {} : optionsOrCallback
    const callback = (
      typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback
    ) as (lock: Lock | null) => unknown
    if (options.mode === 'shared' || options.ifAvailable === true || options.steal === true) {
      throw new Error('sim: only exclusive waiting lock requests are simulated')
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { name, callback, resolve, reject, signal: options.signal }
      queue.push(waiter)
      options.signal?.addEventListener('abort', () => {
        const i = queue.indexOf(waiter)
        if (i < 0) return
        queue.splice(i, 1)
        reject(new DOMException('the lock request was aborted', 'AbortError'))
      })
      grantNext(name)
    })
  }
  return {
    request,
    query: () => Promise.resolve({ held: [], pending: [] }),
  } as unknown as LockManager
}

function channelClass(life: Life): typeof BroadcastChannel {
  const open = new Set<SimChannel>()
  class SimChannel {
    readonly name: string
    onmessage: ((event: MessageEvent) => void) | null = null
    onmessageerror: ((event: MessageEvent) => void) | null = null
    #closed = false

    constructor(name: string) {
      this.name = name
      open.add(this)
    }

    postMessage(message: unknown): void {
      if (this.#closed) throw new DOMException('channel is closed', 'InvalidStateError')
      const data = structuredClone(message)
      for (const other of open) {
        if (other === this || other.name !== this.name) continue
        life.after(1, `${life.name} tab message`, () => other.deliver(data))
      }
    }

    deliver(data: unknown): void {
      if (this.#closed) return
      this.onmessage?.({ data } as MessageEvent)
    }

    close(): void {
      this.#closed = true
      open.delete(this)
    }

    addEventListener(): void {
      throw new Error('sim: the client sets onmessage; addEventListener is not simulated')
    }

    removeEventListener(): void {}

    dispatchEvent(): boolean {
      return false
    }
  }
  return SimChannel as unknown as typeof BroadcastChannel
}
