// The loopback DNS server for tests: the demo DNS of connector/demo/demo-dns.ts, re-exported for the tests.
export { startDnsServer, type TestDnsServer, type Zone } from '../../connector/demo/demo-dns.js';
