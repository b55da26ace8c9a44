/**
 * `@switchboard/client/testing`: test doubles for code that talks to Switchboard as a device. Not
 * for production: a server or an app never imports this entry (test/unit/test-doubles.test.ts
 * checks the server's sources).
 *
 * - `DeviceSimulator`: the SDK's own `connectDevice` answering from memory, recording what it
 *   received, and able to hang or send malformed acks on purpose.
 * - `MemoryStore`: a `TableStore` holding the desktop app's six tables and a vector index in memory.
 */
export { answerFromStore, DeviceSimulator, type DeviceClient, type DeviceSimulatorOptions, type Responder } from './device-simulator';
export { MemoryStore, type StoreSeed } from './memory-store';
