// The loopback FHIR R4 server for tests: the demo EHR of connector/demo/demo-ehr.ts, re-exported for the tests.
export { startFhirTestServer, type ExportSettings, type Fault, type FhirTestServer, type FhirTestServerOptions, type RecordedRequest } from '../../../connector/demo/demo-ehr.js';
