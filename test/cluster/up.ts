/**
 * `npm run cluster:up`: brings the local test cluster up (building it the first time) and prints
 * `export KUBECONFIG=<path>` on stdout, so `eval "$(npm run -s cluster:up)"` points kubectl at it.
 * Progress goes to stderr.
 */
import { clusterUp } from './cluster.ts';

const info = await clusterUp();
process.stdout.write(`export KUBECONFIG=${info.kubeconfig}\n`);
