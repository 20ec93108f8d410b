// `prepack` of every public package: puts the repository's LICENSE beside its package.json, so
// the tarball carries the licence text (the copy is git-ignored; the root file is the one kept).
import { copyFileSync } from 'node:fs'

copyFileSync(new URL('../LICENSE', import.meta.url), 'LICENSE')
