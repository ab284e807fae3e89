/** `npm run cluster:down`: stops the local test cluster and removes its etcd data (idempotent). */
import { clusterDown } from './cluster.ts';

await clusterDown();
process.stderr.write('[cluster] down\n');
