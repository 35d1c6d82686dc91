// The throw-away CA tests trust explicitly: the demo CA of connector/demo/demo-ca.ts, re-exported for the tests.
export { createTestCa, digestHex, testDkimKey, type TestCa, type TestCert } from '../../connector/demo/demo-ca.js';
