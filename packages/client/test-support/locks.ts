// A Web Locks stand-in for Node: an exclusive queue per name (tabs tests, two-tab clients).

/** Exclusive locks by name: the first request holds it until its callback's promise settles. */
export function fakeLocks(): LockManager {
  const queues = new Map<string, (() => void)[]>()
  const held = new Set<string>()
  const next = (name: string) => {
    const run = queues.get(name)?.shift()
    if (run === undefined) held.delete(name)
    else run()
  }
  return {
    request(name: string, options: LockOptions, callback: LockGrantedCallback<unknown>) {
      return new Promise((resolve, reject) => {
        const run = () => {
          held.add(name)
          Promise.resolve(callback({ name, mode: 'exclusive' } as Lock))
            .then(resolve, reject)
            .finally(() => next(name))
        }
        options.signal?.addEventListener('abort', () => {
          const q = queues.get(name) ?? []
          const i = q.indexOf(run)
          if (i >= 0) q.splice(i, 1)
          reject(new Error('aborted'))
        })
        if (held.has(name)) queues.set(name, [...(queues.get(name) ?? []), run])
        else run()
      })
    },
    query: async () => ({ held: [], pending: [] }),
  } as unknown as LockManager
}
