// Loopback SMTP sinks for tests: the demo mail sinks of connector/demo/mail-sink.ts, re-exported for the tests.
export { startSmtpSink, type SinkMessage, type SinkMode, type SinkOptions, type SmtpSink } from '../../connector/demo/mail-sink.js';
