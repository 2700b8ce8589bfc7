// The PKI's API for the CLI and later phases: one import for the store, kubeconfigs and tokens.

export { KUBECONFIG_MODE, writeFileAtomic } from "./files.js";
export {
  KUBECONFIG_SPECS,
  type Kubeconfig,
  mergedNames,
  mergeKubeconfig,
  parseKubeconfig,
  serializeKubeconfig,
} from "./kubeconfigs.js";
export { CERT_SPECS, type CertSpec, type PkiInputs, pkiInputs, resolveCerts } from "./specs.js";
export {
  ADMIN_KUBECONFIG,
  CERTIFICATE_BACKDATE_MS,
  type EnsureResult,
  ensurePki,
  listStore,
  missingFiles,
  type RenewOptions,
  renew,
  renewableNames,
  type StoreEntry,
  type StoreOptions,
  userKubeconfig,
} from "./store.js";
export {
  type BootstrapToken,
  discoveryHash,
  formatBootstrapToken,
  generateBootstrapToken,
  isValidBootstrapToken,
  parseBootstrapToken,
} from "./tokens.js";
