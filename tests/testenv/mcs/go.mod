// Pins the Multicluster Services API (sigs.k8s.io/mcs-api): tests/testenv/setup.sh copies its
// CRDs (config/crd: ServiceExport, ServiceImport) from this version for the test clusters.
module federator.test/mcs

go 1.26.0

require sigs.k8s.io/mcs-api v0.5.2
